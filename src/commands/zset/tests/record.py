#!/usr/bin/env python3
"""Re-records the expected replies of a `recorded.rs` test file from a live redis-server.

    python3 record.py PORT path/to/recorded.rs

Each `#[test] fn NAME() { run_script(PROTO, SHARDS, &[ ("line", b"reply"), ... ]) }` is replayed
line by line on the server at 127.0.0.1:PORT (FLUSHALL first, default zset thresholds, HELLO 3
when PROTO is 3) and rewritten with the bytes the server answered. A line `!limits E V` sets
zset-max-listpack-entries and -value on the server (the Rust side sets the thread's test
thresholds). Lines use the test tokenizer's syntax: spaces separate arguments, "..." quotes,
\\xNN, \\\\ and \\" escape. Comments and blank lines in a script are not kept.
"""
import re, socket, sys

def tokenize(line):
    s = line.encode('latin-1')
    args, i = [], 0
    while i < len(s):
        if s[i] == 32:
            i += 1
            continue
        quoted = s[i] == 34
        if quoted:
            i += 1
        arg = bytearray()
        while i < len(s):
            c = s[i]
            if quoted and c == 34:
                i += 1
                break
            if not quoted and c == 32:
                break
            if c == 92 and i + 1 < len(s):
                if s[i + 1] == ord('x'):
                    arg.append(int(s[i + 2:i + 4], 16))
                    i += 4
                else:
                    arg.append(s[i + 1])
                    i += 2
                continue
            arg.append(c)
            i += 1
        args.append(bytes(arg))
    return args

class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(('127.0.0.1', port))
        self.buf = b''

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def end_of(self, pos):
        while self.buf.find(b'\r\n', pos) < 0:
            self.fill()
        end = self.buf.find(b'\r\n', pos)
        t, head, nxt = self.buf[pos:pos + 1], self.buf[pos + 1:end], end + 2
        if t in b'+-:_,#(':
            return nxt
        n = int(head)
        if t in b'$=!':
            if n < 0:
                return nxt
            while len(self.buf) < nxt + n + 2:
                self.fill()
            return nxt + n + 2
        if n < 0:
            return nxt
        for _ in range(n * 2 if t in b'%|' else n):
            nxt = self.end_of(nxt)
        return nxt

    def call(self, args):
        self.s.sendall(b'*%d\r\n' % len(args) + b''.join(b'$%d\r\n%s\r\n' % (len(a), a) for a in args))
        end = self.end_of(0)
        reply, self.buf = self.buf[:end], self.buf[end:]
        return reply

def rust_bytes(b):
    esc = {13: '\\r', 10: '\\n', 34: '\\"', 92: '\\\\'}
    return 'b"' + ''.join(esc.get(c, chr(c) if 32 <= c < 127 else '\\x%02x' % c) for c in b) + '"'

def set_limits(c, e, v):
    c.call([b'CONFIG', b'SET', b'zset-max-listpack-entries', e])
    c.call([b'CONFIG', b'SET', b'zset-max-listpack-value', v])

def record(port, proto, lines):
    c = Conn(port)
    c.call([b'FLUSHALL'])
    set_limits(c, b'128', b'64')
    if proto == '3':
        c.call([b'HELLO', b'3'])
    out = []
    for line in lines:
        if line.startswith('!limits '):
            e, v = line.split()[1:]
            set_limits(c, e.encode(), v.encode())
            out.append('        (r#"%s"#, b""),' % line)
        else:
            out.append('        (r#"%s"#,\n         %s),' % (line, rust_bytes(c.call(tokenize(line)))))
    set_limits(c, b'128', b'64')
    return out

def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    text = open(path).read()
    test = re.compile(r'#\[test\]\nfn (\w+)\(\) \{\n    run_script\((\d), (\d+), &\[\n(.*?)\n    \]\);\n\}', re.S)
    header = text[:text.index('#[test]')]
    body = []
    for name, proto, shards, steps in test.findall(text):
        lines = re.findall(r'\(r#"(.*?)"#,', steps)
        body.append('#[test]\nfn %s() {\n    run_script(%s, %s, &[\n%s\n    ]);\n}\n'
                    % (name, proto, shards, '\n'.join(record(port, proto, lines))))
    open(path, 'w').write(header + '\n'.join(body))

main()
