class Row:
    def show(self):
        pass


def rows():
    row = Row()
    yield row
