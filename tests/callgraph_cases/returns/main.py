from .lib import Builder, fresh, typed


def run():
    Builder().step().step().finish()
    fresh().finish()
    typed().finish()
    x = fresh()
    y = x.step()
    y.finish()
