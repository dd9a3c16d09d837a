class Disk:
    def read(self):
        pass

    def close(self):
        pass


class Net:
    def send(self):
        pass

    def close(self):
        pass
