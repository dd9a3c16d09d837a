from .shapes import Circle, Plain, Square


def build():
    Circle(1)
    Square()
    Plain()
