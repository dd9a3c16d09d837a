import functools

from .lib import Service, logged, timed


@logged
def kept():
    pass


@timed
def wrapped():
    pass


def replacing(fn):
    def other():
        pass
    return other


@replacing
def gone():
    pass


def register(fn):
    return fn


@register
def same():
    pass


@functools.lru_cache
def cached():
    pass


def run(s: Service):
    kept()
    wrapped()
    gone()
    same()
    cached()
    s.size.bit()
    s.total.bit()
    Service.build().size.bit()
    Service.helper()
