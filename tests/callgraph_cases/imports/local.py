def helper():  # the module's own helper: a function's import of another one shadows it there
    pass


def later():
    from .impl import helper
    helper()


def own():
    helper()
