from __future__ import annotations


class Builder:
    def step(self) -> Builder:
        return self

    def finish(self):
        pass


def fresh():
    b = Builder()
    return b


def typed() -> "Builder":
    return unknown()
