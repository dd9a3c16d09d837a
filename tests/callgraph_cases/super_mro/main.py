class A:
    def hello(self):
        pass


class B(A):
    def hello(self):
        super().hello()


class C(A):
    def hello(self):
        super().hello()


class D(B, C):
    def hello(self):
        super().hello()


class E(C):
    pass


class F(E, B):
    def greet(self):
        super().hello()
