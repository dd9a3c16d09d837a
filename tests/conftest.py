from __future__ import annotations

import os
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# The server the PostgreSQL contract tests create their throwaway databases on.
PG_ADMIN_URL = os.environ.get("CODEGRAPH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"))
    return root


def git_init(root: Path) -> None:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"],
        check=True,
    )


# A small package that exercises the resolver: relative and absolute imports, aliases,
# re-exports through __init__.py, a star import with __all__, inheritance, self/super calls.
SHOP = {
    "shop/__init__.py": '''
        """The shop package."""
        from .models import Customer as Customer
        from .pricing import *
        ''',
    "shop/models.py": '''
        class Base:
            def save(self):
                return self.validate()

            def validate(self):
                return True


        class Customer(Base):
            """A paying customer."""

            def validate(self):
                ok = super().validate()
                return ok and self.has_email()

            def has_email(self):
                return True
        ''',
    "shop/pricing.py": '''
        __all__ = ["total_price"]

        TAX_RATE = 0.2


        def total_price(items):
            return sum(items) * (1 + TAX_RATE)


        def _hidden():
            return 0
        ''',
    "shop/checkout.py": '''
        from . import pricing
        from .models import Customer
        import shop.pricing as sp


        def checkout(items):
            customer = Customer()
            customer.save()
            first = pricing.total_price(items)
            return sp.total_price(items) + first


        def helper():
            def inner():
                return checkout([])
            return inner()
        ''',
    "app.py": '''
        from shop import Customer, total_price
        from shop.checkout import checkout as run_checkout


        def main():
            c = Customer()
            run_checkout([1, 2])
            return total_price([3])
        ''',
}


@pytest.fixture
def shop_repo(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "repo", SHOP)


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh, empty database `codegraph_t_<random>`, dropped afterwards; skips without a server."""
    psycopg = pytest.importorskip("psycopg")
    name = f"codegraph_t_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at {PG_ADMIN_URL}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store location for each backend: the contract tests run against both."""
    if request.param == "sqlite":
        yield str(tmp_path / "db")
        return
    with pg_database() as url:
        yield url
