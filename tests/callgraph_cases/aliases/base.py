class Handler:
    def handle(self):
        pass

    def serve(self):
        self.handle()


def apply(fn):
    fn()
