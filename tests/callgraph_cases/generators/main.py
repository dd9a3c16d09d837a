from .lib import Row, rows


def numbers():
    yield Row()


def run():
    for r in numbers():
        r.show()
    for r in rows():
        r.show()
    g = numbers()
    next(g)
