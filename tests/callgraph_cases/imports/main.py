from . import pkgmod
from .pkgmod import Thing as T


def run():
    pkgmod.helper()
    T().act()
    pkgmod.Thing.act(None)
