import functools


def logged(fn):
    @functools.wraps(fn)
    def inner(*args):
        return fn(*args)
    return inner


def timed(fn):
    return fn


class Bits:
    def bit(self):
        pass


class Service:
    @property
    def size(self) -> Bits:
        return Bits()

    @functools.cached_property
    def total(self):
        return Bits()

    @classmethod
    def build(cls):
        return cls()

    @staticmethod
    def helper():
        pass
