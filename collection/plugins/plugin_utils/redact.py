# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT
"""Redaction by key of the texts in a diff: the controller's second line of defence.

The module redacts every diff before it returns it (core/redact in the Go
source); the action plugin redacts the texts again with this copy of the
same rules, so that a secret the module missed still never reaches Ansible's
output. Both are held to the same golden files (core/redact/testdata/keys):

* a key is secret when its name contains token, password, passwd,
  passphrase, secret, private key, API key, access key, account key or
  credential, or has the word auth, dsn, pass or pwd, unless its last word
  names a file, path, folder, time or switch (image_pull_secrets, names of
  Kubernetes secrets, are shown); a NAME=value list entry is secret by the
  same rule or when NAME has the word KEY;
* the texts are parsed (TOML with tomllib, YAML with PyYAML), each secret
  value is found where it stands and replaced by "<redacted>" (a NAME=value
  entry keeps its NAME), every other character is left as it was, and the
  result is parsed again: same keys, no secret left, else it is hidden whole;
* a text that does not parse is redacted line by line, and hidden whole when
  a secret value may run past its line.

Without tomllib (Python before 3.11) or tomli, TOML texts are redacted by the
scanner alone, unchecked.
"""

from __future__ import annotations

import re

import yaml

try:
    import tomllib as _toml
except ImportError:  # Python before 3.11
    try:
        import tomli as _toml
    except ImportError:
        _toml = None

PLACEHOLDER = '<redacted>'
QUOTED = '"%s"' % PLACEHOLDER
HIDDEN = '# (hidden: the secrets in this text could not be located safely)\n'

_SECRET_PARTS = ('token', 'password', 'passwd', 'passphrase', 'secret', 'privatekey', 'apikey', 'accesskey',
                 'accountkey', 'credential')
_SECRET_WORDS = frozenset(('auth', 'authorization', 'dsn', 'pass', 'pwd'))
_NOT_SECRET_LAST = frozenset(('file', 'path', 'dir', 'at', 'allowed'))
_NOT_SECRET_NAMES = frozenset(('imagepullsecrets', 'pausepodimagepullsecrets'))

# Nesting deeper than gitlab-runner's settings ever are is not decoded
# (core/table.MaxNesting).
MAX_NESTING = 32
MAX_VISITS = 100000


def _is_upper(c):
    return 'A' <= c <= 'Z'


def _is_lower(c):
    return 'a' <= c <= 'z'


def _is_digit(c):
    return '0' <= c <= '9'


def words(name):
    """A name's lower-case words: split at every character that is not an
    ASCII letter or digit, and where camel case starts a new word."""
    out, cur = [], []
    for i, c in enumerate(name):
        if not (_is_upper(c) or _is_lower(c) or _is_digit(c)):
            if cur:
                out.append(''.join(cur).lower())
                cur = []
            continue
        if _is_upper(c) and cur:
            prev = cur[-1]
            if _is_lower(prev) or _is_digit(prev) or (
                    _is_upper(prev) and i + 1 < len(name) and _is_lower(name[i + 1])):
                out.append(''.join(cur).lower())
                cur = []
        cur.append(c)
    if cur:
        out.append(''.join(cur).lower())
    return out


def _secret_name(name, env):
    w = words(name)
    if not w or w[-1] in _NOT_SECRET_LAST:
        return False
    joined = ''.join(w)
    if joined in _NOT_SECRET_NAMES:
        return False
    if any(p in joined for p in _SECRET_PARTS):
        return True
    return any(x in _SECRET_WORDS or (env and x in ('key', 'keys')) for x in w)


def is_secret_key(key):
    """A key whose value is a secret, whatever its shape."""
    return _secret_name(key, False)


def is_secret_name(name):
    """An environment variable (or driver option) name whose value is a secret."""
    return _secret_name(name, True)


def _env_entry(s):
    name, sep, value = s.partition('=')
    if not sep:
        return None
    n = name.lstrip('-')
    if len(name) - len(n) > 2 or not n:
        return None
    for i, c in enumerate(n):
        if c == '_' or _is_upper(c) or _is_lower(c):
            continue
        if i > 0 and (_is_digit(c) or c in '.-'):
            continue
        return None
    return name, value


def secret_entry(s):
    """(shown, secret) for a NAME=value list entry."""
    e = _env_entry(s)
    if e is None or e[1] == '' or e[1] == PLACEHOLDER or not is_secret_name(e[0]):
        return s, False
    return e[0] + '=' + PLACEHOLDER, True


# --- line by line ---------------------------------------------------------

_LINE_KEY = re.compile(r'''("(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[A-Za-z0-9_.\-]+)[ \t]*[=:]''')


def _opens_block(v):
    v = v.rstrip(' \t\r')
    if v.startswith('"""') or v.startswith("'''") or v[0] in '|>':
        return True
    if v[0] == '"':
        i = 1
        while i < len(v):
            if v[i] == '\\':
                i += 2
                continue
            if v[i] == '"':
                return False
            i += 1
        return True
    if v[0] == "'":
        return "'" not in v[1:]
    if v[0] in '[{':
        return v.count('[') + v.count('{') > v.count(']') + v.count('}')
    return False


def _redact_line(line):
    """(line, open): the value after each secret-looking key redacted to the
    line's end (a quoted NAME=value entry up to its quote); open when the
    value may go on past the line."""
    out = []
    p = 0
    while p < len(line):
        m = _LINE_KEY.search(line, p)
        if m is None:
            break
        ks, ke, sep_end = m.start(1), m.end(1), m.end()
        key = line[ks:ke]
        if key[0] == '"':
            name = key[1:-1]
            if '\\' in name:
                name = 'token'  # an escaped key may spell anything
        elif key[0] == "'":
            name = key[1:-1]
        else:
            name = key[key.rfind('.') + 1:]
        if not is_secret_name(name):
            out.append(line[p:sep_end])
            p = sep_end
            continue
        if ks > 0 and line[ks - 1] in '"\'' and key[0] not in '"\'' and line[ke:sep_end] == '=':
            j = line.find(line[ks - 1], sep_end)
            if j >= 0:
                out.append(line[p:sep_end])
                if j > sep_end:
                    out.append(PLACEHOLDER)
                p = j
                continue
        rest = line[sep_end:].lstrip(' \t')
        out.append(line[p:len(line) - len(rest)])
        if rest.strip() == '' or rest[0] == '#':
            out.append(rest)
            return ''.join(out), True
        out.append(QUOTED)
        return ''.join(out), _opens_block(rest)
    out.append(line[p:])
    return ''.join(out), False


def by_line(text):
    """Redact a text that is neither TOML nor YAML."""
    lines = text.split('\n')
    for i, line in enumerate(lines):
        t = line.lstrip(' \t')
        if t.startswith('? ') and is_secret_name(t[2:].strip()):
            return HIDDEN
        out, is_open = _redact_line(line)
        if is_open:
            return HIDDEN
        lines[i] = out
    return '\n'.join(lines)


def _comment_lines(text):
    if '#' not in text:
        return text
    lines = text.split('\n')
    for i, line in enumerate(lines):
        if line.lstrip(' \t').startswith('#'):
            lines[i] = _redact_line(line)[0]
    return '\n'.join(lines)


def _replace_spans(text, spans):
    out, last = [], 0
    for start, end, repl in spans:
        out.append(text[last:start])
        out.append(repl)
        last = end
    out.append(text[last:])
    return ''.join(out)


def _replace_values(text, values):
    values = sorted((v for v in values if len(v) >= 6), key=len, reverse=True)
    if not values:
        return text
    return re.sub('|'.join(re.escape(v) for v in values), PLACEHOLDER, text)


# --- TOML -----------------------------------------------------------------

def _skip_toml_string(data, i):
    c = data[i]
    multi = i + 2 < len(data) and data[i + 1] == c and data[i + 2] == c
    if multi:
        i += 2
    i += 1
    while i < len(data):
        if data[i] == '\\' and c == '"':
            i += 1
        elif data[i] == '\n':
            if not multi:
                return i - 1
        elif data[i] == c and not multi:
            return i
        elif data[i] == c and i + 2 < len(data) and data[i + 1] == c and data[i + 2] == c:
            i += 2
            while i + 1 < len(data) and data[i + 1] == c:
                i += 1
            return i
        i += 1
    return i


def _toml_too_deep(data):
    """core/table.CheckTOMLNesting: brackets and braces outside strings and
    comments, plus the parts of a dotted key."""
    stack, dots, in_key = [], 0, True
    i = 0
    while i < len(data):
        c = data[i]
        if c == '\n':
            if not stack:
                in_key, dots = True, 0
        elif c == '#':
            while i + 1 < len(data) and data[i + 1] != '\n':
                i += 1
        elif c in '"\'':
            i = _skip_toml_string(data, i)
        elif c == '=':
            in_key, dots = False, 0
        elif c == '.':
            if in_key:
                dots += 1
                if dots + len(stack) > MAX_NESTING:
                    return True
        elif c == ',':
            if stack and stack[-1] == '{':
                in_key, dots = True, 0
        elif c in '[{':
            stack.append(c)
            if len(stack) + dots > MAX_NESTING:
                return True
            if c == '{':
                in_key, dots = True, 0
        elif c in ']}':
            if stack:
                stack.pop()
            if c == '}':
                in_key = False
        i += 1
    return False


class _Follow(Exception):
    pass


class _TomlScanner:
    """Where each value of a valid TOML text starts and ends."""

    def __init__(self, s):
        self.s = s
        self.i = 0
        self.spans = []

    def scan(self):
        s = self.s
        while True:
            self.blank()
            if self.i >= len(s):
                return self.spans
            if s.startswith('[[', self.i):
                self.i += 2
                self.key()
                if not s.startswith(']]', self.i):
                    raise _Follow()
                self.i += 2
            elif s[self.i] == '[':
                self.i += 1
                self.key()
                if not self.eat(']'):
                    raise _Follow()
            else:
                self.key_value()
            self.space()
            if self.i < len(s) and s[self.i] == '#':
                self.comment()
            if self.i < len(s) and not self.newline():
                raise _Follow()

    def eat(self, c):
        if self.i < len(self.s) and self.s[self.i] == c:
            self.i += 1
            return True
        return False

    def space(self):
        while self.i < len(self.s) and self.s[self.i] in ' \t':
            self.i += 1

    def newline(self):
        if self.s.startswith('\r\n', self.i):
            self.i += 2
            return True
        return self.eat('\n')

    def comment(self):
        while self.i < len(self.s) and self.s[self.i] != '\n':
            self.i += 1

    def blank(self):
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in ' \t\r\n':
                self.i += 1
            elif c == '#':
                self.comment()
            else:
                return

    def key(self):
        s = self.s
        while True:
            self.space()
            if self.i >= len(s):
                raise _Follow()
            c = s[self.i]
            if c == '"':
                end = self.basic_end(self.i + 1)
                raw = s[self.i + 1:end - 1]
                if '\\' in raw:
                    if _toml is None:
                        raw = 'token'  # cannot decode it here: take it for a secret
                    else:
                        try:
                            m = _toml.loads(s[self.i:end] + ' = 0')
                        except ValueError:
                            raise _Follow() from None
                        if len(m) != 1:
                            raise _Follow()
                        raw = list(m)[0]
                last, self.i = raw, end
            elif c == "'":
                j = self.i + 1
                while j < len(s) and s[j] not in "'\n":
                    j += 1
                if j >= len(s) or s[j] != "'":
                    raise _Follow()
                last, self.i = s[self.i + 1:j], j + 1
            else:
                j = self.i
                while j < len(s) and (_is_upper(s[j]) or _is_lower(s[j]) or _is_digit(s[j]) or s[j] in '_-'):
                    j += 1
                if j == self.i:
                    raise _Follow()
                last, self.i = s[self.i:j], j
            self.space()
            if not self.eat('.'):
                return last

    def key_value(self):
        k = self.key()
        if not self.eat('='):
            raise _Follow()
        self.space()
        self.value(k, False)

    def basic_end(self, i):
        s = self.s
        while i < len(s):
            c = s[i]
            if c == '\\':
                i += 2
            elif c == '"':
                return i + 1
            elif c == '\n':
                raise _Follow()
            else:
                i += 1
        raise _Follow()

    def multi_end(self, i, q):
        s = self.s
        while i < len(s):
            c = s[i]
            if c == '\\' and q == '"':
                i += 2
            elif c == q:
                n = 0
                while i + n < len(s) and s[i + n] == q:
                    n += 1
                if n >= 3:
                    if n > 5:
                        raise _Follow()
                    return i + n
                i += n
            else:
                i += 1
        raise _Follow()

    def value(self, key, in_list):
        s, start = self.s, self.i
        if start >= len(s):
            raise _Follow()
        c = s[start]
        if s.startswith('"""', start) or s.startswith("'''", start):
            quote = 3
            end = self.multi_end(start + 3, c)
        elif c == '"':
            quote = 1
            end = self.basic_end(start + 1)
        elif c == "'":
            quote = 1
            j = start + 1
            while j < len(s) and s[j] not in "'\n":
                j += 1
            if j >= len(s) or s[j] != "'":
                raise _Follow()
            end = j + 1
        elif c == '[':
            self.array(key)
            return
        elif c == '{':
            self.inline_table()
            return
        else:
            end = start
            while end < len(s) and s[end] not in ',]}#\r\n':
                end += 1
            while end > start and s[end - 1] in ' \t':
                end -= 1
            if end == start:
                raise _Follow()
            raw = s[start:end]
            if is_secret_key(key) and raw not in ('true', 'false'):
                self.spans.append((start, end, QUOTED))
            self.i = end
            return
        self.i = end
        content = s[start + quote:end - quote]
        if quote == 3:
            if content.startswith('\r'):
                content = content[1:]
            if content.startswith('\n'):
                content = content[1:]
        if is_secret_key(key):
            if content != '' and content != PLACEHOLDER:
                self.spans.append((start, end, QUOTED))
        elif in_list:
            shown, secret = secret_entry(content)
            if secret:
                self.spans.append((start, end, '"%s"' % shown))

    def array(self, key):
        self.i += 1
        while True:
            self.blank()
            if self.eat(']'):
                return
            self.value(key, True)
            self.blank()
            if self.eat(','):
                continue
            if self.eat(']'):
                return
            raise _Follow()

    def inline_table(self):
        self.i += 1
        while True:
            self.blank()
            if self.eat('}'):
                return
            self.key_value()
            self.blank()
            if self.eat(','):
                continue
            if self.eat('}'):
                return
            raise _Follow()


def _secret_values(root, found):
    """Every value under a secret key, or in a secret NAME=value entry, that is
    not yet redacted (nor empty, nor a bool), of a decoded document."""
    def walk(key, v, in_list):
        if isinstance(v, dict):
            for k, e in v.items():
                walk(k, e, False)
        elif isinstance(v, list):
            for e in v:
                walk(key, e, True)
        elif isinstance(v, str):
            if is_secret_key(key):
                if v != '' and v != PLACEHOLDER:
                    found.append(v)
            elif in_list:
                if secret_entry(v)[1]:
                    found.append(_env_entry(v)[1])
        elif isinstance(v, bool) or v is None:
            pass
        elif is_secret_key(key):
            found.append(v)
    walk('', root, False)
    return found


def _paths(root):
    out = []

    def walk(p, v):
        if isinstance(v, dict):
            for k, e in v.items():
                q = p + '.' + repr(k)
                out.append(q)
                walk(q, e)
        elif isinstance(v, list):
            for i, e in enumerate(v):
                q = '%s[%d]' % (p, i)
                out.append(q)
                walk(q, e)
    walk('', root)
    return sorted(out)


def _decode_toml(text):
    if _toml_too_deep(text) or _toml is None:
        return None
    try:
        return _toml.loads(text)
    except (ValueError, RecursionError):
        return None


def _is_toml(text):
    if _toml is None:
        if _toml_too_deep(text):
            return False
        try:
            _TomlScanner(text).scan()
        except (_Follow, IndexError):
            return False
        return True
    return _decode_toml(text) is not None


def redact_toml(text):
    """Redact a TOML text by key."""
    if _toml is None:
        if _toml_too_deep(text):
            return by_line(text)
        try:
            spans = _TomlScanner(text).scan()
        except (_Follow, IndexError):
            return by_line(text)
        return _comment_lines(_replace_spans(text, spans))
    orig = _decode_toml(text)
    if orig is None:
        return by_line(text)
    try:
        spans = _TomlScanner(text).scan()
    except (_Follow, IndexError):
        return HIDDEN
    out = _comment_lines(_replace_spans(text, spans))
    out = _replace_values(out, [v for v in _secret_values(orig, []) if isinstance(v, str)])
    after = _decode_toml(out)
    if after is None or _secret_values(after, []) or _paths(orig) != _paths(after):
        return HIDDEN
    return out


# --- YAML -----------------------------------------------------------------

def _yaml_docs(text):
    try:
        return list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except (yaml.YAMLError, RecursionError):
        return None


def _kept_scalar(n):
    if n.value in ('', PLACEHOLDER):
        return True
    if n.style:
        return False
    return n.value in ('true', 'True', 'TRUE', 'false', 'False', 'FALSE', '~', 'null', 'Null', 'NULL')


def _yaml_secrets(docs):
    """[(node, is_entry)] to redact, in the order met; None when too large."""
    out, seen = [], set()
    visits = [0]

    def walk(n, key, in_list):
        visits[0] += 1
        if visits[0] > MAX_VISITS:
            return False
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                if not walk(v, k.value if isinstance(k, yaml.ScalarNode) else '', False):
                    return False
        elif isinstance(n, yaml.SequenceNode):
            for c in n.value:
                if not walk(c, key, True):
                    return False
        elif isinstance(n, yaml.ScalarNode):
            if is_secret_key(key):
                if not _kept_scalar(n) and id(n) not in seen:
                    seen.add(id(n))
                    out.append((n, False))
            elif in_list:
                if secret_entry(n.value)[1] and id(n) not in seen:
                    seen.add(id(n))
                    out.append((n, True))
        return True
    for d in docs:
        if d is not None and not walk(d, '', False):
            return None
    return out


def _yaml_paths(docs):
    out = []
    seen = set()

    def walk(n, p):
        if id(n) in seen and not isinstance(n, yaml.ScalarNode):
            out.append(p + '*')
            return
        seen.add(id(n))
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                q = p + '.' + repr(k.value)
                out.append(q)
                walk(v, q)
        elif isinstance(n, yaml.SequenceNode):
            for i, c in enumerate(n.value):
                q = '%s[%d]' % (p, i)
                out.append(q)
                walk(c, q)
    for i, d in enumerate(docs):
        if d is not None:
            walk(d, 'doc%d' % i)
    return out


def _line_starts(text):
    starts = [0]
    for i, c in enumerate(text):
        if c == '\n':
            starts.append(i + 1)
    return starts


def _offset(text, lines, mark):
    if mark.line >= len(lines):
        return None
    off = lines[mark.line] + mark.column
    if off > len(text) or '\n' in text[lines[mark.line]:off]:
        return None
    return off


def _item_indent(text, lines, n):
    off = _offset(text, lines, n.start_mark)
    if off is None:
        return n.start_mark.column - 1
    i = off - 1
    while i >= 0 and text[i] in ' \t':
        i -= 1
    if i >= 0 and text[i] == '-':
        return i - lines[n.start_mark.line]
    return n.start_mark.column - 1


def _skip_properties(text, i):
    while i < len(text) and text[i] in '&!':
        while i < len(text) and text[i] not in ' \t\r\n':
            i += 1
        while i < len(text) and text[i] in ' \t\r\n':
            i += 1
    return i


def _indent_of(line):
    return len(line) - len(line.lstrip(' '))


def _line_at(text, i):
    j = text.find('\n', i)
    if j < 0:
        line, nxt = text[i:], len(text)
    else:
        line, nxt = text[i:j], j + 1
    if line.endswith('\r'):
        line = line[:-1]
    return line, nxt


def _plain_content(line):
    end = len(line)
    for k in range(1, len(line)):
        if line[k] == '#' and line[k - 1] in ' \t':
            end = k
            break
    return len(line[:end].rstrip(' \t'))


def _scalar_end(text, start, indent, flow):
    if start >= len(text):
        return None
    c = text[start]
    if c == '"':
        i = start + 1
        while i < len(text):
            if text[i] == '\\':
                i += 2
                continue
            if text[i] == '"':
                return i + 1
            i += 1
        return None
    if c == "'":
        i = start + 1
        while i < len(text):
            if text[i] == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    i += 2
                    continue
                return i + 1
            i += 1
        return None
    if c in '|>':
        if flow:
            return None
        header, nxt = _line_at(text, start)
        end = start + len(header)
        while nxt < len(text):
            line, after = _line_at(text, nxt)
            if line.strip() != '':
                if _indent_of(line) <= indent:
                    break
                end = nxt + len(line)
            nxt = after
        return end
    if flow:
        i = start
        while i < len(text):
            c = text[i]
            if c in ',]}' or (c == '#' and i > start and text[i - 1] in ' \t\r\n'):
                break
            if c == ':' and (i + 1 == len(text) or text[i + 1] in ' \t\r\n,]}'):
                break
            i += 1
        while i > start and text[i - 1] in ' \t\r\n':
            i -= 1
        return i if i > start else None
    first, nxt = _line_at(text, start)
    end = start + _plain_content(first)
    while nxt < len(text):
        line, after = _line_at(text, nxt)
        trimmed = line.strip()
        if trimmed == '':
            nxt = after
            continue
        if _indent_of(line) <= indent or trimmed.startswith('#') or line.startswith('---') or line.startswith('...'):
            break
        end = nxt + _plain_content(line)
        nxt = after
    return end if end > start else None


def _yaml_spans(text, docs, secret):
    lines = _line_starts(text)
    places = {}

    def walk(n, indent, flow):
        # A node met again is an alias: its place is where it is defined.
        if id(n) in places:
            return
        places[id(n)] = (indent, flow)
        if isinstance(n, yaml.MappingNode):
            flow = flow or bool(n.flow_style)
            for k, v in n.value:
                walk(v, k.start_mark.column, flow)
        elif isinstance(n, yaml.SequenceNode):
            flow = flow or bool(n.flow_style)
            for c in n.value:
                walk(c, _item_indent(text, lines, c), flow)
    for d in docs:
        if d is not None:
            walk(d, -1, False)
    spans = []
    for n, entry in secret:
        if id(n) not in places:
            return None
        indent, flow = places[id(n)]
        start = _offset(text, lines, n.start_mark)
        if start is None:
            return None
        start = _skip_properties(text, start)
        end = _scalar_end(text, start, indent, flow)
        if end is None:
            return None
        repl = QUOTED
        if entry:
            repl = '"%s"' % secret_entry(n.value)[0]
        spans.append((start, end, repl))
    spans.sort(key=lambda sp: sp[0])
    for a, b in zip(spans, spans[1:]):
        if b[0] < a[1]:
            return None
    return spans


def redact_yaml(text):
    """Redact a YAML text by key."""
    try:
        return _redact_yaml(text)
    except RecursionError:  # nested deeper than Python walks
        return HIDDEN


def _redact_yaml(text):
    docs = _yaml_docs(text)
    if docs is None:
        return by_line(text)
    secret = _yaml_secrets(docs)
    if secret is None:
        return HIDDEN
    spans = _yaml_spans(text, docs, secret)
    if spans is None:
        return HIDDEN
    values = [_env_entry(n.value)[1] if entry else n.value for n, entry in secret]
    out = _replace_values(_comment_lines(_replace_spans(text, spans)), values)
    after = _yaml_docs(out)
    if after is None:
        return HIDDEN
    left = _yaml_secrets(after)
    if left is None or left or _yaml_paths(docs) != _yaml_paths(after):
        return HIDDEN
    return out


# --- by format ------------------------------------------------------------

def redact_keys(text):
    """Redact a text by key whatever its format: as TOML when it is TOML, else
    as YAML when it is a YAML mapping or list, else line by line."""
    if _is_toml(text):
        return redact_toml(text)
    docs = _yaml_docs(text)
    if docs and docs[0] is not None and not isinstance(docs[0], yaml.ScalarNode):
        return redact_yaml(text)
    return by_line(text)


def redact_file(name, text):
    """Redact a file's text by key, as TOML or YAML by its name."""
    lower = name.lower()
    if lower.endswith('.yaml') or lower.endswith('.yml'):
        return redact_yaml(text)
    return redact_toml(text)


def scrub_diff(diff):
    """Redact by key the before/after texts of a module's diff (a dict or a
    list of them): by the file's name when the header names one, else
    whatever the format."""
    if isinstance(diff, list):
        return [scrub_diff(d) for d in diff]
    if not isinstance(diff, dict):
        return diff
    header = diff.get('before_header')
    out = {}
    for k, v in diff.items():
        if k in ('before', 'after') and isinstance(v, str):
            try:
                if isinstance(header, str) and re.search(r'\.(toml|ya?ml)$', header, re.IGNORECASE):
                    v = redact_file(header, v)
                else:
                    v = redact_keys(v)
            except Exception:  # pylint: disable=broad-except
                # Never fail the task over a diff: hide the text instead.
                v = HIDDEN
        out[k] = v
    return out
