class Shape:
    def describe(self):
        self.area()
        self.name()

    def area(self):
        return 0

    def name(self):
        return "shape"


class Circle(Shape):
    def area(self):
        return 3

    def name(self):
        return "circle"
