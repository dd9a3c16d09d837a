from typing import Optional, Union

from .lib import Disk, Net


def a(x: Disk):
    x.read()


def b(x: Optional[Disk]):
    x.read()


def c(x: "Net | None"):
    x.send()


def d(x: Net | None = None):
    x.send()


def e(x=Disk()):
    x.read()


def f(x: Union[Disk, Net]):
    x.close()
