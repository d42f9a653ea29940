"""Consistency levels, with scylla-driver's names and the CQL wire values."""


class ConsistencyLevel(object):
    ANY = 0
    ONE = 1
    TWO = 2
    THREE = 3
    QUORUM = 4
    ALL = 5
    LOCAL_QUORUM = 6
    EACH_QUORUM = 7
    SERIAL = 8
    LOCAL_SERIAL = 9
    LOCAL_ONE = 10

    value_to_name = {
        ANY: 'ANY', ONE: 'ONE', TWO: 'TWO', THREE: 'THREE', QUORUM: 'QUORUM', ALL: 'ALL',
        LOCAL_QUORUM: 'LOCAL_QUORUM', EACH_QUORUM: 'EACH_QUORUM', SERIAL: 'SERIAL',
        LOCAL_SERIAL: 'LOCAL_SERIAL', LOCAL_ONE: 'LOCAL_ONE',
    }
    name_to_value = {name: value for value, name in value_to_name.items()}

    @staticmethod
    def is_serial(cl):
        return cl in (ConsistencyLevel.SERIAL, ConsistencyLevel.LOCAL_SERIAL)
