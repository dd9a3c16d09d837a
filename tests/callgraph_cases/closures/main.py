from .lib import Counter


def outer():
    counter = Counter()

    def inner():
        counter.bump()
        helper()

    def helper():
        pass

    inner()
    return inner


def make_adder():
    def add():
        pass
    return add


def use():
    outer()()
    make_adder()()
