import json
import os


class A:
    def close(self):
        pass


class B:
    def close(self):
        pass


def run(obj, name):
    obj.close()
    json.dumps({})
    os.path.join("a", "b")
    getattr(obj, name)()
    eval("A().close()")
    len([])
    A().close()
