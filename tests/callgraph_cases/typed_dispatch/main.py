from .animals import Animal, Dog


class Kennel:
    resident: Dog

    def __init__(self, pet: Animal):
        self.pet = pet

    def wake(self):
        self.resident.speak()
        self.pet.speak()


def call(a: Animal):
    a.speak()


def exact():
    Dog().speak()


def caught():
    try:
        pass
    except Problem as e:
        e.explain()


class Problem(Exception):
    def explain(self):
        pass


class Worse(Problem):
    def explain(self):
        pass
