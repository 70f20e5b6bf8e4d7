"""Prints the line tables of a compiled test module as the interpreter running it sees them: per
code object, "FIRSTLINENO HEX(co_linetable)", then "START:END:LINE" per co_lines() range (bytes;
LINE -1 when the range has none). Used by python_line_table_test against every interpreter."""
import sys
source = '''
def simple(a, b):
    return a + b

def loops(n):
    total = 0
    for i in range(n):
        if i % 3 == 0:
            continue
        while total > 100:
            total -= 7
        total += (i *
                  2)
    return total

def handler(x):
    try:
        return 1 / x
    except ZeroDivisionError as e:
        raise ValueError("zero") from e
    finally:
        x = None

class Klass:
    def method(self, items):
        return [item.upper() for item in items
                if item]

def gen():
    yield from range(3)
    yield 4
''' + "\n" * 300 + '''
def far_away():
    return (1,
            2)
'''
def walk(code):
    yield code
    for c in code.co_consts:
        if hasattr(c, "co_lines"):
            yield from walk(c)
for code in walk(compile(source, "t.py", "exec")):
    print(code.co_firstlineno, code.co_linetable.hex())
    print(" ".join(f"{s}:{e}:{-1 if l is None else l}" for s, e, l in code.co_lines()))
