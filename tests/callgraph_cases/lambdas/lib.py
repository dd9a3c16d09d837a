def key(x):
    return x


def show():
    pass
