-- Quick start: connect, create, write, read (luajit examples/lua/quickstart.lua [HOST]).
local scylla = require "scylla_shard"
local session = assert(scylla.connect { contact_points = { arg[1] or "127.0.0.1" } })
assert(session:execute("CREATE KEYSPACE IF NOT EXISTS demo WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"))
assert(session:execute("CREATE TABLE IF NOT EXISTS demo.users (id int PRIMARY KEY, name text)"))
assert(session:execute("INSERT INTO demo.users (id, name) VALUES (?, ?)", { 1, "Ada" }))
local rows = assert(session:execute("SELECT name FROM demo.users WHERE id = ?", { 1 }))
print(rows[1].name)
assert(rows[1].name == "Ada")
