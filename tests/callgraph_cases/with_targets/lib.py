class Tx:
    def commit(self):
        pass


class Session:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def query(self):
        pass
