class Counter:
    def bump(self):
        pass
