class Engine:
    def start(self):
        pass


class Wheel:
    def turn(self):
        pass
