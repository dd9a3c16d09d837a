def apply(fn, value):
    return fn(value)


def double(x):
    return x * 2


def each(callback):
    callback()


def ping():
    pass


def run():
    apply(double, 2)
    each(ping)
    each(callback=ping)
