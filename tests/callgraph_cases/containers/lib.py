def one():
    pass


def two():
    pass


def three():
    pass


class Worker:
    def work(self):
        pass
