-- Quick start (luajit examples/lua/quickstart.lua [HOST]): connect, query, print.
local scylla = require "scylla_shard"
local session = assert(scylla.connect { contact_points = { arg[1] or "127.0.0.1" } })
local rows = assert(session:execute("SELECT cluster_name, release_version FROM system.local"))
print(rows[1].cluster_name, rows[1].release_version)
session:close()
