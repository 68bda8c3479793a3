"""Varlink messages (varlink.org) as mprocd speaks them: one JSON object
each, ended by a NUL byte. Encoding, decoding and the shapes of calls and
replies, as lib/varlink.c has them; whoever uses them owns the socket."""

import collections
import json

METHOD_NOT_FOUND = "org.varlink.service.MethodNotFound"
INTERFACE_NOT_FOUND = "org.varlink.service.InterfaceNotFound"
INVALID_PARAMETER = "org.varlink.service.InvalidParameter"

# mprocd reads JSON with jansson, whose integers are 64-bit.
INT_MIN = -(1 << 63)
INT_MAX = (1 << 63) - 1

Call = collections.namedtuple("Call", "method parameters more oneway")
Reply = collections.namedtuple("Reply", "error parameters continues")


class ProtocolError(Exception):
    """The peer sent something that is not a Varlink message: the
    connection is broken and should be closed."""


def check(value):
    """Raises ValueError if value holds what mprocd's JSON reader (jansson)
    refuses though json.dumps writes it: an integer outside 64 bits, a
    string with a NUL character."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if "\0" in v:
                raise ValueError("a string holds a NUL character")
        elif isinstance(v, int) and not isinstance(v, bool):
            if not INT_MIN <= v <= INT_MAX:
                raise ValueError("integer %d does not fit in 64 bits" % v)
        elif isinstance(v, dict):
            stack.extend(v)
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)


def encode(message):
    """message as bytes on the wire: compact UTF-8 JSON and a NUL. Raises
    TypeError or ValueError for anything that is not JSON mprocd can read
    (a set, NaN, a lone surrogate, a 65-bit integer...)."""
    try:
        text = json.dumps(message, separators=(",", ":"),
                          ensure_ascii=False, allow_nan=False)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    # After dumps, which refuses circular references check() would chase.
    check(message)
    return text.encode("utf-8") + b"\0"


def _no_duplicates(pairs):
    """A JSON object as a dict; repeated keys are an error, as in mprocd."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("repeated key in an object")
    return obj


def decode(frame):
    """One message (without its NUL) as a dict; raises ProtocolError."""
    try:
        msg = json.loads(frame.decode("utf-8"),
                         object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError("message is not valid JSON (%s)" % e) from None
    if not isinstance(msg, dict):
        raise ProtocolError("message is not a JSON object")
    return msg


class Reader:
    """Splits a byte stream on NUL bytes and decodes each message."""

    def __init__(self):
        self._buf = bytearray()
        self._scanned = 0

    def feed(self, data):
        """Adds bytes as they came from the socket."""
        self._buf += data

    def next_message(self):
        """The next complete message, decoded, or None if there is none
        yet. Raises ProtocolError when that message is not JSON."""
        i = self._buf.find(b"\0", self._scanned)
        if i < 0:
            self._scanned = len(self._buf)
            return None
        frame = bytes(self._buf[:i])
        del self._buf[:i + 1]
        self._scanned = 0
        return decode(frame)

    def buffered(self):
        """How many bytes of an unfinished message are held."""
        return len(self._buf)


def call(method, parameters=None, more=False, oneway=False):
    """A call message."""
    msg = {"method": method, "parameters": parameters or {}}
    if more:
        msg["more"] = True
    if oneway:
        msg["oneway"] = True
    return msg


def reply(parameters=None, continues=False):
    """A reply message; continues: more replies to this call follow."""
    msg = {"parameters": parameters or {}}
    if continues:
        msg["continues"] = True
    return msg


def error(name, parameters=None):
    """An error reply, such as error(METHOD_NOT_FOUND, {"method": m})."""
    return {"error": name, "parameters": parameters or {}}


def _flag(msg, name):
    v = msg.get(name, False)
    if not isinstance(v, bool):
        raise ProtocolError('"%s" is not a boolean' % name)
    return v


def parse_call(msg):
    """A decoded call as a Call; raises ProtocolError if it is none."""
    method = msg.get("method")
    if not isinstance(method, str) or "." not in method:
        raise ProtocolError('call has no "method" string of the form '
                            'interface.Method')
    params = msg.get("parameters")
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        raise ProtocolError('"parameters" is not an object')
    return Call(method, params, _flag(msg, "more"), _flag(msg, "oneway"))


def parse_reply(msg):
    """A decoded reply as a Reply (error None if it is not an error)."""
    err = msg.get("error")
    if err is not None and not isinstance(err, str):
        raise ProtocolError('"error" is not a string')
    params = msg.get("parameters")
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        raise ProtocolError('"parameters" is not an object')
    return Reply(err, params, msg.get("continues") is True)
