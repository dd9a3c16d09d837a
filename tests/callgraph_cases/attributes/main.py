from dataclasses import dataclass

from .lib import Engine, Wheel


class Car:
    wheel = Wheel()

    def __init__(self):
        self.engine = None

    def install(self):
        self.engine = Engine()

    def drive(self):
        self.engine.start()
        self.wheel.turn()


@dataclass
class Garage:
    car: Car
    spare: "Wheel"

    def service(self):
        self.car.drive()
        self.spare.turn()


def outside(c: Car):
    c.engine.start()
