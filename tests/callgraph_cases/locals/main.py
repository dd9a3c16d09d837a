from .lib import Cat, Dog, make


def run(flag):
    a = Dog()
    a.speak()
    b = a
    b.fetch()
    c, d = Cat(), Dog()
    c.speak()
    e, *rest = [Cat(), Dog()]
    e.purr()
    f = Cat() if flag else Dog()
    f.speak()
    g = make()
    g.speak()
    h = None
    h = h or Cat()
    h.purr()
    if (w := Dog()):
        w.fetch()


pet = Cat()
pet.purr()
