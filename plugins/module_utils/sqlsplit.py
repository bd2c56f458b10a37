# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Split a PostgreSQL script into statements, keeping each statement's line.

The engine runs a migration statement by statement so that a failure can name
the statement and its line, and so that a no-transaction migration can run
each statement on its own. The splitter knows what PostgreSQL's lexer knows
about where a semicolon does not end a statement: quoted strings ('' and E''
with backslash escapes), quoted identifiers, dollar-quoted bodies ($$ and
$tag$), line comments and nested block comments, and the bodies of
SQL-standard ``BEGIN ATOMIC ... END`` functions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


class Statement(object):
    """One statement of a script: its text, its 1-based index and the line it starts on."""

    __slots__ = ("sql", "index", "line")

    def __init__(self, sql, index, line):
        self.sql = sql
        self.index = index
        self.line = line

    def __repr__(self):
        return "Statement(%d, line %d, %r)" % (self.index, self.line, self.sql[:40])


class SqlSplitError(ValueError):
    pass


def _is_blank(text):
    """True when text holds nothing but white space and comments."""
    return not strip_comments(text).strip()


def strip_comments(text):
    """Return text with comments removed (quoted text is kept as it is)."""
    out = []
    pos = 0
    for kind, start, end in _tokens(text):
        if kind == "comment":
            out.append(text[pos:start])
            out.append(" ")
            pos = end
    out.append(text[pos:])
    return "".join(out)


def _tokens(text):
    """Yield (kind, start, end) for the quoted, commented and word spans of text,
    and ('semicolon', i, i + 1) for each top-level semicolon."""
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if ch == "-" and nxt == "-":
            end = text.find("\n", i)
            end = n if end == -1 else end + 1
            yield ("comment", i, end)
            i = end
        elif ch == "/" and nxt == "*":
            depth = 1
            j = i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth += 1
                    j += 2
                elif text.startswith("*/", j):
                    depth -= 1
                    j += 2
                else:
                    j += 1
            if depth:
                raise SqlSplitError("unterminated /* comment starting at line %d" % line_of(text, i))
            yield ("comment", i, j)
            i = j
        elif ch == "'" or (ch in "eE" and nxt == "'" and (i == 0 or not _is_word_char(text[i - 1]))):
            backslash = ch in "eE"
            j = i + (2 if backslash else 1)
            while True:
                if j >= n:
                    raise SqlSplitError("unterminated quoted string starting at line %d" % line_of(text, i))
                c = text[j]
                if backslash and c == "\\":
                    j += 2
                    continue
                if c == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        j += 2
                        continue
                    break
                j += 1
            yield ("string", i, j + 1)
            i = j + 1
        elif ch == '"':
            j = i + 1
            while True:
                if j >= n:
                    raise SqlSplitError("unterminated quoted identifier starting at line %d" % line_of(text, i))
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        j += 2
                        continue
                    break
                j += 1
            yield ("identifier", i, j + 1)
            i = j + 1
        elif ch == "$" and (i == 0 or not _is_word_char(text[i - 1])):
            match = _DOLLAR_TAG.match(text, i)
            if not match:
                i += 1
                continue
            tag = match.group(0)
            end = text.find(tag, match.end())
            if end == -1:
                raise SqlSplitError("unterminated dollar-quoted string %s starting at line %d"
                                    % (tag, line_of(text, i)))
            yield ("string", i, end + len(tag))
            i = end + len(tag)
        elif ch == ";":
            yield ("semicolon", i, i + 1)
            i += 1
        elif _is_word_start(ch) and (i == 0 or not _is_word_char(text[i - 1])):
            match = _WORD.match(text, i)
            yield ("word", i, match.end())
            i = match.end()
        else:
            i += 1


def _is_word_char(ch):
    return ch.isalnum() or ch in "_$"


def _is_word_start(ch):
    return ch.isalpha() or ch == "_"


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def split_sql(text):
    """Split a script into a list of Statement, dropping empty ones.

    Raises SqlSplitError for an unterminated string, identifier or comment.
    """
    statements = []
    start = 0
    atomic_depth = 0
    previous_word = ""
    for kind, tok_start, tok_end in _tokens(text):
        if kind == "word":
            word = text[tok_start:tok_end].upper()
            if word == "ATOMIC" and previous_word == "BEGIN":
                atomic_depth += 1
            elif atomic_depth and word in ("CASE",):
                atomic_depth += 1
            elif atomic_depth and word == "END":
                atomic_depth -= 1
            previous_word = word
            continue
        if kind != "semicolon" or atomic_depth:
            continue
        _append(statements, text, start, tok_start)
        start = tok_end
    _append(statements, text, start, len(text))
    return statements


def _append(statements, text, start, end):
    chunk = text[start:end]
    if _is_blank(chunk):
        return
    # The statement starts at its first character that is not space or comment.
    lead = len(chunk) - len(chunk.lstrip())
    offset = start + lead
    for kind, tok_start, tok_end in _tokens(chunk):
        if kind == "comment" and tok_start == lead:
            rest = chunk[tok_end:]
            lead = tok_end + (len(rest) - len(rest.lstrip()))
            offset = start + lead
            continue
        break
    statements.append(Statement(text[offset:end].strip(), len(statements) + 1, line_of(text, offset)))
