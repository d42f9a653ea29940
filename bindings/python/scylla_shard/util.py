"""Value classes for the CQL types that have no exact Python builtin, with
the behaviour of scylla-driver's `cassandra.util` classes of the same names
(construction, comparison, hashing, str and repr), so code and output
written against scylla-driver keep working.
"""

import calendar
import datetime
import pickle
import time as _time
from collections.abc import Mapping
from functools import total_ordering

DATETIME_EPOC = datetime.datetime(1970, 1, 1)
_DAY_SECONDS = 86400


def datetime_from_timestamp(timestamp):
    """A naive UTC datetime from seconds since the epoch."""
    return DATETIME_EPOC + datetime.timedelta(seconds=timestamp)


def datetime_from_ms_timestamp(timestamp_ms):
    return DATETIME_EPOC + datetime.timedelta(milliseconds=timestamp_ms)


def ms_timestamp_from_datetime(dt):
    """Milliseconds since the epoch; a naive datetime is taken as UTC."""
    if dt.tzinfo is not None and dt.utcoffset() is not None:
        dt = dt.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    delta = dt - DATETIME_EPOC
    return (delta.days * _DAY_SECONDS + delta.seconds) * 1000 + delta.microseconds // 1000


class Time(object):
    """A time of day with nanosecond resolution."""

    MICRO = 1000
    MILLI = 1000 * MICRO
    SECOND = 1000 * MILLI
    MINUTE = 60 * SECOND
    HOUR = 60 * MINUTE
    DAY = 24 * HOUR

    nanosecond_time = 0

    def __init__(self, value):
        if isinstance(value, int):
            if not 0 <= value < Time.DAY:
                raise ValueError("value must be less than number of nanoseconds in a day (%d)"
                                 % Time.DAY)
            self.nanosecond_time = value
        elif isinstance(value, datetime.time):
            self.nanosecond_time = (value.hour * Time.HOUR + value.minute * Time.MINUTE
                                    + value.second * Time.SECOND
                                    + value.microsecond * Time.MICRO)
        elif isinstance(value, str):
            try:
                whole, _, fraction = value.partition(".")
                t = _time.strptime(whole, "%H:%M:%S")
                nanos = int((fraction + "0" * 9)[:9]) if fraction else 0
            except ValueError:
                raise ValueError("can't interpret %r as a time" % (value,))
            self.nanosecond_time = (t.tm_hour * Time.HOUR + t.tm_min * Time.MINUTE
                                    + t.tm_sec * Time.SECOND + nanos)
        else:
            raise TypeError('Time arguments must be a whole number, datetime.time, or string')

    hour = property(lambda self: self.nanosecond_time // Time.HOUR)
    minute = property(lambda self: self.nanosecond_time // Time.MINUTE % 60)
    second = property(lambda self: self.nanosecond_time // Time.SECOND % 60)
    nanosecond = property(lambda self: self.nanosecond_time % Time.SECOND)

    def time(self):
        """A datetime.time (nanoseconds truncated to microseconds)."""
        return datetime.time(self.hour, self.minute, self.second,
                             self.nanosecond // Time.MICRO)

    def __hash__(self):
        return self.nanosecond_time

    def __eq__(self, other):
        if isinstance(other, Time):
            return self.nanosecond_time == other.nanosecond_time
        if isinstance(other, int):
            return self.nanosecond_time == other
        return self.nanosecond_time % Time.MICRO == 0 and self.time() == other

    def __ne__(self, other):
        return not self.__eq__(other)

    def __lt__(self, other):
        if not isinstance(other, Time):
            return NotImplemented
        return self.nanosecond_time < other.nanosecond_time

    def __repr__(self):
        return "Time(%s)" % self.nanosecond_time

    def __str__(self):
        return "%02d:%02d:%02d.%09d" % (self.hour, self.minute, self.second, self.nanosecond)


@total_ordering
class Date(object):
    """A date as days from the epoch, with a wider range than datetime.date
    (CQL dates span about +-5.8 million years)."""

    MINUTE = 60
    HOUR = 60 * MINUTE
    DAY = 24 * HOUR
    date_format = "%Y-%m-%d"
    days_from_epoch = 0

    def __init__(self, value):
        if isinstance(value, int):
            self.days_from_epoch = value
        elif isinstance(value, (datetime.date, datetime.datetime)):
            self.days_from_epoch = calendar.timegm(value.timetuple()) // Date.DAY
        elif isinstance(value, str):
            s = value[1:] if value[:1] == "+" else value
            dt = datetime.datetime.strptime(s, self.date_format)
            self.days_from_epoch = calendar.timegm(dt.timetuple()) // Date.DAY
        else:
            raise TypeError('Date arguments must be a whole number, datetime.date, or string')

    @property
    def seconds(self):
        return self.days_from_epoch * Date.DAY

    def date(self):
        """A datetime.date; ValueError outside datetime's years 1..9999."""
        try:
            return (datetime.date(1970, 1, 1) + datetime.timedelta(days=self.days_from_epoch))
        except (OverflowError, ValueError):
            raise ValueError("%r exceeds ranges for built-in datetime.date" % self)

    def __hash__(self):
        return self.days_from_epoch

    def __eq__(self, other):
        if isinstance(other, Date):
            return self.days_from_epoch == other.days_from_epoch
        if isinstance(other, int):
            return self.days_from_epoch == other
        try:
            return self.date() == other
        except Exception:
            return False

    def __ne__(self, other):
        return not self.__eq__(other)

    def __lt__(self, other):
        if not isinstance(other, Date):
            return NotImplemented
        return self.days_from_epoch < other.days_from_epoch

    def __repr__(self):
        return "Date(%s)" % self.days_from_epoch

    def __str__(self):
        try:
            d = self.date()
            return "%04d-%02d-%02d" % (d.year, d.month, d.day)
        except ValueError:
            return str(self.days_from_epoch)


class Duration(object):
    """A CQL duration: months, days and nanoseconds (all of one sign)."""

    months = 0
    days = 0
    nanoseconds = 0

    def __init__(self, months=0, days=0, nanoseconds=0):
        self.months = months
        self.days = days
        self.nanoseconds = nanoseconds

    def __eq__(self, other):
        return (isinstance(other, self.__class__) and self.months == other.months
                and self.days == other.days and self.nanoseconds == other.nanoseconds)

    def __hash__(self):
        return hash((self.months, self.days, self.nanoseconds))

    def __repr__(self):
        return "Duration({0}, {1}, {2})".format(self.months, self.days, self.nanoseconds)

    def __str__(self):
        negative = self.months < 0 or self.days < 0 or self.nanoseconds < 0
        return '%s%dmo%dd%dns' % ('-' if negative else '', abs(self.months), abs(self.days),
                                  abs(self.nanoseconds))


class SortedSet(object):
    """A set kept sorted, whose items need not be hashable (a CQL set may
    hold lists or maps)."""

    def __init__(self, iterable=()):
        self._items = []
        for item in iterable:
            self.add(item)

    def __len__(self):
        return len(self._items)

    def __getitem__(self, i):
        return self._items[i]

    def __iter__(self):
        return iter(self._items)

    def __reversed__(self):
        return reversed(self._items)

    def __repr__(self):
        return '%s(%r)' % (self.__class__.__name__, self._items)

    def __reduce__(self):
        return self.__class__, (self._items,)

    def __eq__(self, other):
        if isinstance(other, self.__class__):
            return self._items == other._items
        try:
            return len(other) == len(self._items) and all(item in self for item in other)
        except TypeError:
            return NotImplemented

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __contains__(self, item):
        i = self._find_insertion(item)
        return i < len(self._items) and self._items[i] == item

    def _find_insertion(self, x):
        lo, hi = 0, len(self._items)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._items[mid] < x:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def add(self, item):
        i = self._find_insertion(item)
        if i < len(self._items):
            if self._items[i] != item:
                self._items.insert(i, item)
        else:
            self._items.append(item)

    def update(self, iterable):
        for item in iterable:
            self.add(item)

    def discard(self, item):
        i = self._find_insertion(item)
        if i < len(self._items) and self._items[i] == item:
            self._items.pop(i)

    def remove(self, item):
        i = self._find_insertion(item)
        if i < len(self._items) and self._items[i] == item:
            self._items.pop(i)
        else:
            raise KeyError(str(item))

    def clear(self):
        del self._items[:]

    def copy(self):
        new = SortedSet()
        new._items = list(self._items)
        return new

    def union(self, *others):
        new = self.copy()
        for other in others:
            new.update(other)
        return new

    __or__ = union

    def intersection(self, *others):
        return SortedSet(i for i in self if all(i in o for o in others))

    __and__ = intersection

    def difference(self, *others):
        return SortedSet(i for i in self if not any(i in o for o in others))

    __sub__ = difference

    def isdisjoint(self, other):
        return not any(i in self for i in other)

    def issubset(self, other):
        return all(i in other for i in self)

    def issuperset(self, other):
        return all(i in self for i in other)


sortedset = SortedSet


class OrderedMap(Mapping):
    """A map that keeps insertion order and accepts unhashable keys (a CQL
    map may be keyed by frozen collections)."""

    def __init__(self, *args, **kwargs):
        if len(args) > 1:
            raise TypeError('expected at most 1 arguments, got %d' % len(args))
        self._items = []
        self._index = {}
        if args:
            source = args[0]
            if callable(getattr(source, 'keys', None)):
                for k in source.keys():
                    self._insert(k, source[k])
            else:
                for k, v in source:
                    self._insert(k, v)
        for k, v in kwargs.items():
            self._insert(k, v)

    def _insert(self, key, value):
        flat = self._serialize_key(key)
        i = self._index.get(flat, -1)
        if i >= 0:
            self._items[i] = (key, value)
        else:
            self._items.append((key, value))
            self._index[flat] = len(self._items) - 1

    __setitem__ = _insert

    def __getitem__(self, key):
        try:
            return self._items[self._index[self._serialize_key(key)]][1]
        except KeyError:
            raise KeyError(str(key))

    def __delitem__(self, key):
        try:
            index = self._index.pop(self._serialize_key(key))
        except KeyError:
            raise KeyError(str(key))
        self._index = {k: (i if i < index else i - 1) for k, i in self._index.items()}
        self._items.pop(index)

    def __iter__(self):
        for k, _ in self._items:
            yield k

    def __len__(self):
        return len(self._items)

    def __eq__(self, other):
        if isinstance(other, OrderedMap):
            return self._items == other._items
        try:
            d = dict(other)
            return len(d) == len(self._items) and all(v == d[k] for k, v in self._items)
        except KeyError:
            return False
        except TypeError:
            pass
        return NotImplemented

    def __repr__(self):
        return '%s([%s])' % (self.__class__.__name__,
                             ', '.join("(%r, %r)" % (k, v) for k, v in self._items))

    def __str__(self):
        return '{%s}' % ', '.join("%r: %r" % (k, v) for k, v in self._items)

    def popitem(self):
        try:
            k, v = self._items.pop()
        except IndexError:
            raise KeyError()
        del self._index[self._serialize_key(k)]
        return k, v

    def _serialize_key(self, key):
        return pickle.dumps(key)


class OrderedMapSerializedKey(OrderedMap):
    """The class of decoded CQL maps (the name scylla-driver gives them);
    keys are found by value, like OrderedMap's."""
