from .base import Handler as BaseHandler
from .base import apply as call_with

Alias = BaseHandler


class Json(BaseHandler):
    def handle(self):
        pass


class Xml(Alias):
    def handle(self):
        pass


def ping():
    pass


def run():
    call_with(ping)
