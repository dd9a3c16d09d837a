import contextlib

from .lib import Session, Tx


@contextlib.contextmanager
def opened():
    yield Tx()


def run():
    with Session() as s:
        s.query()
    with opened() as t:
        t.commit()
