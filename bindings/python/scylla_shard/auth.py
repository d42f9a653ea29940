"""Authentication (`cassandra.auth`): PasswordAuthenticator credentials."""


class AuthProvider(object):
    """Base of the auth providers; only PlainTextAuthProvider is supported."""


class PlainTextAuthProvider(AuthProvider):
    def __init__(self, username=None, password=None):
        self.username = username
        self.password = password
