class Cat:
    def speak(self):
        pass

    def purr(self):
        pass


class Dog:
    def speak(self):
        pass

    def fetch(self):
        pass


def make():
    return Dog()
