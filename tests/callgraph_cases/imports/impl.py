class Thing:
    def act(self):
        pass


def helper():
    pass
