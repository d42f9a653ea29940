-- Every CQL type round-trips through the LuaJIT binding against the
-- emulator: bound to a prepared statement (typed by its markers) and to a
-- simple statement (typed by scylla.typed / wrappers or inferred), read
-- back in the Lua forms bindings/lua/README.md documents; NULL and unset;
-- the int64 and map decoding options; refused values.
--   luajit tests/lua/test_types.lua BASE_IP
package.path = arg[0]:gsub("[^/]+$", "") .. "?.lua;" .. package.path
local support = require "support"
local t = require "harness"
local scylla = require "scylla_shard"

local session = support.connect { keyspace = nil }
local must = support.must

must(session, "CREATE KEYSPACE types WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
assert(session:set_keyspace("types"))
must(session, "CREATE TYPE addr (street text, no int)")
must(session, [[CREATE TABLE all_types (id int PRIMARY KEY, a ascii, b bigint, bl blob, bo boolean,
  d decimal, db double, f float, i int, ts timestamp, u uuid, t text, vi varint, tu timeuuid,
  ip inet, dt date, tm time, si smallint, ti tinyint, du duration, l list<int>, s set<text>,
  m map<text, int>, tp tuple<int, text>, ud frozen<addr>, ml map<text, frozen<list<bigint>>>,
  lt list<frozen<tuple<uuid, inet, date>>>, sd set<decimal>, mu map<int, frozen<addr>>)]])
must(session, "CREATE TABLE counters (id int PRIMARY KEY, c counter)")

-- Deep equality of decoded values (int64 cdata compare by value).
local function same(a, b)
  if type(a) == "table" and type(b) == "table" then
    if a == b then return true end
    for k, v in pairs(a) do if not same(v, b[k]) then return false end end
    for k in pairs(b) do if a[k] == nil then return false end end
    return getmetatable(a) == getmetatable(b)
  end
  if type(a) == "cdata" or type(b) == "cdata" then return tostring(a) == tostring(b) end
  return a == b
end

local function show(v)
  if type(v) ~= "table" or v == scylla.null then return tostring(v) end
  local parts = {}
  for k, x in pairs(v) do parts[#parts + 1] = tostring(k) .. "=" .. show(x) end
  table.sort(parts)
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function check_same(name, got, want)
  t.check(name, same(got, want), ("got %s, want %s"):format(show(got), show(want)))
end

local int64 = require("ffi").typeof("int64_t")
local UUID = "12345678-9abc-4def-8001-020304050607"
local TIMEUUID = "01020304-0506-11ef-8001-020304050607"

-- column, CQL type, { {value bound, value read back (default: the same)} }
local CASES = {
  { "a", "ascii", { { "hello" }, { "" } } },
  { "b", "bigint", { { int64(9223372036854775807LL) }, { -9223372036854775807LL - 1 }, { 0LL },
    { 5, 5LL }, { "-42", -42LL } } },
  { "bl", "blob", { { "\0\1\2\255" }, { "" } } },
  { "bo", "boolean", { { true }, { false } } },
  { "d", "decimal", { { "123.45" }, { "-0.0012345" }, { "0" }, { "1E+3" }, { "1.50" },
    { "12345678901234567890.123456789" }, { "-1e-3", "-0.001" }, { 2.5, "2.5" } } },
  { "db", "double", { { 1.5 }, { -1e300 }, { 0.1 }, { 1 / 0 } } },
  { "f", "float", { { 1.5 }, { -2.25 }, { 0 } } },
  { "i", "int", { { 2147483647 }, { -2147483648 }, { 0 }, { 7LL, 7 } } },
  { "ts", "timestamp", { { 1700000000123 }, { -1000 }, { 0 } } },
  { "u", "uuid", { { UUID }, { "12345678-9ABC-4DEF-8001-020304050607", UUID },
    { "123456789abc4def8001020304050607", UUID } } },
  { "t", "text", { { "héllo ✓" }, { "" }, { ("x"):rep(100000) } } },
  { "vi", "varint", { { 5LL }, { 0, 0LL }, { "18446744073709551616" },
    { "-170141183460469231731687303715884105728" }, { "-128", -128LL }, { "127", 127LL },
    { "9223372036854775807", 9223372036854775807LL }, { "9223372036854775808" } } },
  { "tu", "timeuuid", { { TIMEUUID } } },
  { "ip", "inet", { { "192.0.2.1" }, { "2001:db8::1" }, { "::1" }, { "::" }, { "::ffff:192.0.2.1" },
    { "fe80::1:2" }, { "1:0:0:1:0:0:0:1", "1:0:0:1::1" }, { "2001:DB8:0:0:0:0:0:0", "2001:db8::" },
    { "0:0:0:0:0:0:0:5", "::5" } } },
  { "dt", "date", { { 0 }, { -1 }, { 19723 }, { "2024-01-01", 19723 }, { "1969-12-31", -1 },
    { -2147483648 }, { 2147483647 } } },
  { "tm", "time", { { 0 }, { 86399999999999 }, { "12:34:56.789", 45296789000000 } } },
  { "si", "smallint", { { 32767 }, { -32768 } } },
  { "ti", "tinyint", { { 127 }, { -128 } } },
  { "du", "duration", { { { months = 1, days = 2, nanoseconds = 3 } },
    { { months = -1, days = -2, nanoseconds = -3000000000 } },
    { { days = 7 }, { months = 0, days = 7, nanoseconds = 0 } } } },
  { "l", "list<int>", { { { 1, 2, 3 } }, { { 3, 3 } } } },
  { "s", "set<text>", { { { "a", "b" } }, { { b = true, a = true }, { "a", "b" } } } },
  { "m", "map<text, int>", { { { a = 1, b = 2 } } } },
  { "tp", "tuple<int, text>", { { { 1, "x" } }, { { 1, scylla.null } }, { { 2 }, { 2, scylla.null } } } },
  { "ud", "frozen<addr>", { { { street = "Main", no = 5 } },
    { { street = "Side" }, { street = "Side", no = scylla.null } } }, prepared_only = true },
  { "ml", "map<text, frozen<list<bigint>>>", { { { x = { 1LL, -2LL }, y = { 9223372036854775807LL } } } } },
  { "lt", "list<frozen<tuple<uuid, inet, date>>>", { { { { UUID, "10.0.0.1", 5 } } } } },
  { "sd", "set<decimal>", { { { "1.5", "2.25" } } } },
  { "mu", "map<int, frozen<addr>>", { { { [1] = { street = "a", no = 1 }, [2] = { street = "b", no = 2 } } } },
    prepared_only = true },
}

local id = 0
for _, case in ipairs(CASES) do
  local column, cql_type, samples = case[1], case[2], case[3]
  local insert = assert(session:prepare(("INSERT INTO all_types (id, %s) VALUES (?, ?)"):format(column)))
  local select_ = assert(session:prepare(("SELECT %s FROM all_types WHERE id = ?"):format(column)))
  for n, sample in ipairs(samples) do
    local bound, want = sample[1], sample[2]
    if want == nil then want = bound end
    local name = ("%s %s #%d"):format(cql_type, column, n)
    -- Prepared: typed by the marker.
    id = id + 1
    local ok, err = insert:execute { id, bound }
    t.check(name .. " prepared insert", ok, err)
    local rows = assert(select_:execute { id })
    check_same(name .. " prepared round trip", rows[1] and rows[1][column], want)
    -- Simple: typed by scylla.typed (the marker type is not known).
    if not case.prepared_only then
      id = id + 1
      ok, err = session:execute(("INSERT INTO all_types (id, %s) VALUES (?, ?)"):format(column),
        { id, scylla.typed(cql_type, bound) })
      t.check(name .. " simple insert", ok, err)
      rows = assert(session:execute(("SELECT %s FROM all_types WHERE id = %d"):format(column, id)))
      check_same(name .. " simple round trip", rows[1] and rows[1][column], want)
    end
  end
end

t.test("meta.columns names and types", function()
  local rows = must(session, "SELECT id, ml, ud, tp FROM all_types WHERE id = 1")
  local columns = rows.meta.columns
  assert(#columns == 4)
  assert(columns[1].name == "id" and columns[1].type == "int", columns[1].type)
  assert(columns[2].type == "map<text, list<bigint>>", columns[2].type)
  assert(columns[3].type == "addr", columns[3].type)
  assert(columns[4].type == "tuple<int, text>", columns[4].type)
end)

t.test("NULL reads as scylla.null in every column", function()
  must(session, "INSERT INTO all_types (id) VALUES (100000)")
  local rows = must(session, "SELECT * FROM all_types WHERE id = 100000")
  local n = 0
  for column, v in pairs(rows[1]) do
    if column ~= "id" then
      assert(v == scylla.null, column .. " is " .. tostring(v))
      n = n + 1
    end
  end
  assert(n == #CASES, n)
end)

t.test("scylla.null binds NULL, scylla.unset and nil leave the column alone", function()
  local insert = assert(session:prepare("INSERT INTO all_types (id, i, t) VALUES (?, ?, ?)"))
  assert(insert:execute { 100001, 1, "kept" })
  assert(insert:execute { 100001, scylla.null, scylla.unset })
  local rows = must(session, "SELECT i, t FROM all_types WHERE id = 100001")
  assert(rows[1].i == scylla.null and rows[1].t == "kept", show(rows[1]))
  assert(insert:execute { 100001, 2 }) -- the missing third argument is unset too
  rows = must(session, "SELECT i, t FROM all_types WHERE id = 100001")
  assert(rows[1].i == 2 and rows[1].t == "kept", show(rows[1]))
  assert(session:execute("INSERT INTO all_types (id, i) VALUES (?, ?)", { 100001, scylla.null }))
  assert(must(session, "SELECT i FROM all_types WHERE id = 100001")[1].i == scylla.null)
end)

t.test("simple statements infer int, double, text, boolean, bigint cdata, list and map", function()
  must(session, "INSERT INTO all_types (id, i, db, t, bo, b, l, m) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    { 100002, 42, 2.5, "txt", true, 7LL, { 1, 2 }, { k = 3 } })
  local r = must(session, "SELECT i, db, t, bo, b, l, m FROM all_types WHERE id = 100002")[1]
  assert(r.i == 42 and r.db == 2.5 and r.t == "txt" and r.bo == true and r.b == 7LL, show(r))
  assert(same(r.l, { 1, 2 }) and same(r.m, { k = 3 }), show(r))
  -- Shorthand wrappers.
  must(session, "INSERT INTO all_types (id, si, ti, u, s) VALUES (?, ?, ?, ?, ?)",
    { 100003, scylla.smallint(3), scylla.tinyint(-3), scylla.uuid(UUID), scylla.set { "z" } })
  r = must(session, "SELECT si, ti, u, s FROM all_types WHERE id = 100003")[1]
  assert(r.si == 3 and r.ti == -3 and r.u == UUID and same(r.s, { "z" }), show(r))
end)

t.test("a simple statement takes a UDT's fields in declaration order", function()
  must(session, "INSERT INTO all_types (id, ud) VALUES (?, ?)", { 100009, scylla.typed("frozen<addr>", { "Elm", 12 }) })
  local r = must(session, "SELECT ud FROM all_types WHERE id = 100009")[1]
  assert(same(r.ud, { street = "Elm", no = 12 }), show(r.ud))
  local ok, err = session:execute("INSERT INTO all_types (id, ud) VALUES (?, ?)",
    { 100009, scylla.udt { street = "x" } })
  assert(not ok and err:find("declaration order"), err)
end)

t.test("named arguments", function()
  local insert = assert(session:prepare("INSERT INTO all_types (id, i, t) VALUES (:id, :i, :t)"))
  assert(insert:execute({ id = 100004, t = "named", i = 4 }, { named = true }))
  local r = must(session, "SELECT i, t FROM all_types WHERE id = :id", { id = 100004 }, { named = true })[1]
  assert(r.i == 4 and r.t == "named", show(r))
  local ok, err, code = insert:execute({ id = 1, nope = 2 }, { named = true })
  assert(not ok and code == scylla.status.NAME_NOT_FOUND and err:find("nope"), err)
end)

t.test("int64 option: cdata (default), number, string", function()
  must(session, "INSERT INTO all_types (id, b, vi) VALUES (100005, 9007199254740993, 123)")
  local q = "SELECT b, vi FROM all_types WHERE id = 100005"
  local r = must(session, q)[1]
  assert(type(r.b) == "cdata" and r.b == 9007199254740993LL and r.vi == 123LL)
  r = must(session, q, nil, { int64 = "number" })[1]
  assert(type(r.b) == "number" and r.vi == 123)
  r = must(session, q, nil, { int64 = "string" })[1]
  assert(r.b == "9007199254740993" and r.vi == "123", show(r))
  local numbers = support.connect { int64 = "number", keyspace = "types" }
  r = must(numbers, q)[1]
  assert(type(r.b) == "number", type(r.b))
  numbers:close()
end)

t.test("map option: ordered key/value pairs, accepted back as an argument", function()
  must(session, "INSERT INTO all_types (id, m) VALUES (100006, {'b': 2, 'a': 1, 'c': 3})")
  local r = must(session, "SELECT m FROM all_types WHERE id = 100006", nil, { map = "ordered" })[1]
  assert(getmetatable(r.m) ~= nil and getmetatable(r.m) == getmetatable(scylla.ordered_map({})))
  assert(#r.m == 3 and r.m[1][1] == "a" and r.m[1][2] == 1 and r.m[3][1] == "c", show(r.m))
  local insert = assert(session:prepare("INSERT INTO all_types (id, m) VALUES (?, ?)"))
  assert(insert:execute { 100007, r.m })
  local back = must(session, "SELECT m FROM all_types WHERE id = 100007")[1]
  assert(same(back.m, { a = 1, b = 2, c = 3 }), show(back.m))
  assert(insert:execute { 100008, scylla.ordered_map { { "x", 9 } } })
  assert(must(session, "SELECT m FROM all_types WHERE id = 100008")[1].m.x == 9)
end)

t.test("counters", function()
  local update = assert(session:prepare("UPDATE counters SET c = c + ? WHERE id = ?"))
  assert(update:execute { 5, 1 })
  assert(update:execute { -2LL, 1 })
  local r = must(session, "SELECT c FROM counters WHERE id = 1")[1]
  assert(r.c == 3LL, tostring(r.c))
end)

-- Values the binding refuses, each with a clear message and no request.
local REFUSED = {
  { "i", "2147483648", "int" }, { "i", 1.5, "int" }, { "i", "7", "int" }, { "ti", 128, "tinyint" },
  { "si", -32769, "smallint" }, { "b", 2 ^ 60 + 0.5, "bigint" }, { "b", "12x", "bigint" },
  { "b", "9223372036854775808", "bigint" }, { "u", "not-a-uuid", "uuid" }, { "ip", "1.2.3.256", "inet" },
  { "ip", "1::2::3", "inet" }, { "dt", "2023-02-29", "date" }, { "tm", 86400e9, "time" },
  { "d", "1.2.3", "decimal" }, { "vi", "1e5", "varint" }, { "bo", 1, "boolean" }, { "t", 5, "text" },
  { "l", { "x" }, "list<int>" }, { "ud", { nope = 1 }, "addr" }, { "du", "1d", "duration" },
}
local insert_any = {}
for _, case in ipairs(REFUSED) do
  local column, value, what = case[1], case[2], case[3]
  insert_any[column] = insert_any[column]
    or assert(session:prepare(("INSERT INTO all_types (id, %s) VALUES (?, ?)"):format(column)))
  local before = assert(session:metrics()).requests
  local ok, err, code = insert_any[column]:execute { 200000, value }
  t.check(("refused %s %s"):format(what, tostring(value)), not ok and type(err) == "string"
    and type(code) == "number" and err:find("argument 2", 1, true) ~= nil, err)
  t.equal(("refused %s %s sent nothing"):format(what, tostring(value)), assert(session:metrics()).requests, before)
end
t.test("a simple statement refuses a value it cannot type", function()
  local ok, err, code = session:execute("INSERT INTO all_types (id, t) VALUES (?, ?)", { 1, function() end })
  assert(not ok and code == scylla.status.TYPE_MISMATCH and err:find("infer"), err)
end)
t.test("typed() refuses an unknown type", function()
  local ok, err = pcall(scylla.typed, "lisst<int>", {})
  assert(not ok and err:find("lisst"), err)
end)

session:close()
t.finish()
