from .lib import one, two, three, Worker

HANDLERS = {"one": one, "two": two}


def dispatch():
    HANDLERS["one"]()
    for h in [one, three]:
        h()
    pair = (two, Worker)
    pair[1]().work()
    for h in HANDLERS.values():
        h()
    table = {}
    table["w"] = Worker
    table["w"]()
