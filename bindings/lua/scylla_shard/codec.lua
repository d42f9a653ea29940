-- Text forms of CQL values that Lua has no native type for: uuids,
-- inet addresses, arbitrary-precision integers (varint) and decimals,
-- 64-bit integers, dates and times. Pure Lua over ffi byte buffers.
local ffi = require "ffi"
local bit = require "bit"

local band, bor, lshift, rshift = bit.band, bit.bor, bit.lshift, bit.rshift
local byte, char, concat, floor = string.byte, string.char, table.concat, math.floor
local tonumber, tostring = tonumber, tostring

local codec = {}

local int64_t = ffi.typeof("int64_t")
local int64_box = ffi.typeof("int64_t[1]")

-- Two lowercase hex digits per byte value.
local HEX = {}
for i = 0, 255 do HEX[i] = ("%02x"):format(i) end

---------------------------------------------------------------- uuid

-- 16 bytes at `p` -> "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
function codec.uuid_to_string(p)
  return HEX[p[0]] .. HEX[p[1]] .. HEX[p[2]] .. HEX[p[3]] .. "-" .. HEX[p[4]] .. HEX[p[5]]
    .. "-" .. HEX[p[6]] .. HEX[p[7]] .. "-" .. HEX[p[8]] .. HEX[p[9]] .. "-" .. HEX[p[10]]
    .. HEX[p[11]] .. HEX[p[12]] .. HEX[p[13]] .. HEX[p[14]] .. HEX[p[15]]
end

-- A uuid string (canonical with dashes, or 32 hex digits) into 16 bytes
-- at `out`. Returns true, or nil and why.
function codec.uuid_from_string(s, out)
  local hex
  if #s == 36 then
    if s:find("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$") then
      hex = s:gsub("%-", "")
    end
  elseif #s == 32 and s:find("^%x+$") then
    hex = s
  end
  if not hex then return nil, "not a uuid: " .. ("%q"):format(s) end
  for i = 0, 15 do
    out[i] = tonumber(hex:sub(2 * i + 1, 2 * i + 2), 16)
  end
  return true
end

---------------------------------------------------------------- inet

local function ipv4_to_string(p, at)
  return p[at] .. "." .. p[at + 1] .. "." .. p[at + 2] .. "." .. p[at + 3]
end

-- 4 or 16 bytes at `p` -> "192.0.2.1" / RFC 5952 text ("2001:db8::1",
-- "::ffff:192.0.2.1" for IPv4-mapped addresses).
function codec.inet_to_string(p, len)
  if len == 4 then return ipv4_to_string(p, 0) end
  local groups = {}
  for i = 0, 7 do groups[i + 1] = p[2 * i] * 256 + p[2 * i + 1] end
  if groups[1] == 0 and groups[2] == 0 and groups[3] == 0 and groups[4] == 0
      and groups[5] == 0 and groups[6] == 0xffff then
    return "::ffff:" .. ipv4_to_string(p, 12)
  end
  -- The longest run of two or more zero groups (the first of equal ones).
  local best_at, best_len, run_at, run_len = 0, 1, 0, 0
  for i = 1, 8 do
    if groups[i] == 0 then
      if run_len == 0 then run_at = i end
      run_len = run_len + 1
      if run_len > best_len then best_at, best_len = run_at, run_len end
    else
      run_len = 0
    end
  end
  local parts = {}
  local i = 1
  while i <= 8 do
    if i == best_at then
      parts[#parts + 1] = (i == 1 and ":" or "") .. (i + best_len > 8 and ":" or "")
      i = i + best_len
    else
      parts[#parts + 1] = ("%x"):format(groups[i])
      i = i + 1
    end
  end
  return concat(parts, ":")
end

local function parse_ipv4(s, out, at)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  local octets = { tonumber(a), tonumber(b), tonumber(c), tonumber(d) }
  for i = 1, 4 do
    if octets[i] > 255 or #(({ a, b, c, d })[i]) > 3 then return nil end
    out[at + i - 1] = octets[i]
  end
  return true
end

-- The 16-bit groups of one side of "::" (an IPv4 tail counts as two).
local function ipv6_groups(side, allow_ipv4, into)
  if side == "" then return true end
  local fields = {}
  for field in (side .. ":"):gmatch("([^:]*):") do fields[#fields + 1] = field end
  for i, field in ipairs(fields) do
    if i == #fields and allow_ipv4 and field:find("%.") then
      local v4 = ffi.new("uint8_t[4]")
      if not parse_ipv4(field, v4, 0) then return nil end
      into[#into + 1] = v4[0] * 256 + v4[1]
      into[#into + 1] = v4[2] * 256 + v4[3]
    elseif field:find("^%x%x?%x?%x?$") then
      into[#into + 1] = tonumber(field, 16)
    else
      return nil
    end
  end
  return true
end

-- "a.b.c.d" or IPv6 text into `out` (room for 16 bytes). Returns the
-- byte count (4 or 16), or nil and why.
function codec.inet_from_string(s, out)
  if parse_ipv4(s, out, 0) then return 4 end
  local bad = "not an IPv4 or IPv6 address: " .. ("%q"):format(s)
  local head, tail = s:match("^(.-)::(.*)$")
  local groups = {}
  if head then
    if tail:find("::", 1, true) then return nil, bad end
    local after = {}
    if not ipv6_groups(head, false, groups) or not ipv6_groups(tail, true, after) then
      return nil, bad
    end
    if #groups + #after > 7 then return nil, bad end
    for _ = 1, 8 - #groups - #after do groups[#groups + 1] = 0 end
    for _, g in ipairs(after) do groups[#groups + 1] = g end
  elseif not ipv6_groups(s, true, groups) or #groups ~= 8 then
    return nil, bad
  end
  for i = 1, 8 do
    out[2 * i - 2] = rshift(groups[i], 8)
    out[2 * i - 1] = band(groups[i], 0xff)
  end
  return 16
end

---------------------------------------------------------------- integers

-- An int64/uint64 cdata as decimal digits (tostring adds "LL"/"ULL").
function codec.int64_to_string(v)
  return (tostring(v):gsub("U?LL$", ""))
end

local INT64_MAX_DIGITS = "9223372036854775807"
local INT64_MIN_DIGITS = "9223372036854775808"

-- Decimal digits (optional sign) -> int64 cdata, or nil and why.
function codec.int64_from_string(s)
  local sign, digits = s:match("^%s*([+-]?)0*(%d+)%s*$")
  if not digits then return nil, "not an integer: " .. ("%q"):format(s) end
  local limit = sign == "-" and INT64_MIN_DIGITS or INT64_MAX_DIGITS
  if #digits > #limit or (#digits == #limit and digits > limit) then
    return nil, s .. " does not fit in 64 bits"
  end
  local v = int64_t(0)
  for i = 1, #digits do
    v = v * 10 - (byte(digits, i) - 48) -- accumulate negatively: -2^63 fits
  end
  if sign ~= "-" then v = -v end
  return v
end

-- Big-endian two's complement bytes at `p` (at most 8) -> int64 cdata.
function codec.int64_from_bytes(p, len)
  local box = int64_box()
  box[0] = (len > 0 and p[0] >= 128) and -1 or 0
  for i = 0, len - 1 do box[0] = bor(lshift(box[0], 8), p[i]) end
  return box[0]
end

-- A number or int64 cdata -> minimal big-endian two's complement bytes.
function codec.int64_to_bytes(v)
  v = int64_t(v)
  local out = {}
  for i = 0, 7 do out[i + 1] = tonumber(band(rshift(v, 56 - 8 * i), 0xff)) end
  local first = 1
  while first < 8 do
    local top, next_byte = out[first], out[first + 1]
    if (top == 0 and next_byte < 128) or (top == 255 and next_byte >= 128) then
      first = first + 1
    else
      break
    end
  end
  return char(unpack(out, first, 8))
end

-- Limbs of 10^7, least significant first: small enough that
-- limb * 256 + carry stays an exact double.
local LIMB = 10000000

-- Big-endian two's complement bytes at `p` -> decimal digits with sign.
function codec.varint_to_string(p, len)
  if len == 0 then return "0" end
  local negative = p[0] >= 128
  local limbs = { 0 }
  for i = 0, len - 1 do
    local carry = negative and (255 - p[i]) or p[i]
    for j = 1, #limbs do
      local v = limbs[j] * 256 + carry
      limbs[j] = v % LIMB
      carry = floor(v / LIMB)
    end
    while carry > 0 do
      limbs[#limbs + 1] = carry % LIMB
      carry = floor(carry / LIMB)
    end
  end
  if negative then -- magnitude = inverted bytes + 1
    local j = 1
    while true do
      local v = (limbs[j] or 0) + 1
      if v < LIMB then limbs[j] = v break end
      limbs[j] = 0
      j = j + 1
    end
  end
  local parts = { (negative and "-" or "") .. limbs[#limbs] }
  for j = #limbs - 1, 1, -1 do parts[#parts + 1] = ("%07d"):format(limbs[j]) end
  return concat(parts)
end

-- Decimal digits with optional sign -> minimal big-endian two's
-- complement bytes (a Lua string), or nil and why.
function codec.varint_from_string(s)
  local sign, digits = s:match("^%s*([+-]?)(%d+)%s*$")
  if not digits then return nil, "not an integer: " .. ("%q"):format(s) end
  local bytes = { 0 } -- least significant first
  for i = 1, #digits do
    local carry = byte(digits, i) - 48
    for j = 1, #bytes do
      local v = bytes[j] * 10 + carry
      bytes[j] = v % 256
      carry = floor(v / 256)
    end
    if carry > 0 then bytes[#bytes + 1] = carry end
  end
  if bytes[#bytes] >= 128 then bytes[#bytes + 1] = 0 end
  local zero = true
  for j = 1, #bytes do if bytes[j] ~= 0 then zero = false break end end
  if sign == "-" and not zero then
    local carry = 1
    for j = 1, #bytes do
      local v = 255 - bytes[j] + carry
      bytes[j] = v % 256
      carry = floor(v / 256)
    end
  end
  local n = #bytes
  while n > 1 do
    local top, next_byte = bytes[n], bytes[n - 1]
    if (top == 0 and next_byte < 128) or (top == 255 and next_byte >= 128) then
      n = n - 1
    else
      break
    end
  end
  local out = {}
  for j = n, 1, -1 do out[#out + 1] = char(bytes[j]) end
  return concat(out)
end

-- Whether decimal digits (with sign) fit in an int64.
function codec.fits_int64(digits)
  local sign, magnitude = digits:match("^([+-]?)0*(%d*)$")
  local limit = sign == "-" and INT64_MIN_DIGITS or INT64_MAX_DIGITS
  return #magnitude < #limit or (#magnitude == #limit and magnitude <= limit)
end

---------------------------------------------------------------- decimal

-- unscaled * 10^-scale as text: "123.45", "-0.001", "5E+3" (negative
-- scales keep their exponent, so every value reads back as it was).
function codec.decimal_to_string(p, len, scale)
  local digits = codec.varint_to_string(p, len)
  if scale == 0 then return digits end
  local sign, magnitude = digits:match("^(%-?)(%d+)$")
  if scale < 0 then return digits .. "E+" .. (-scale) end
  if #magnitude <= scale then magnitude = ("0"):rep(scale - #magnitude + 1) .. magnitude end
  return sign .. magnitude:sub(1, #magnitude - scale) .. "." .. magnitude:sub(#magnitude - scale + 1)
end

-- "123.45", "-1e-3", "5E+3" -> unscaled bytes (a Lua string) and scale,
-- or nil and why.
function codec.decimal_from_string(s)
  local sign, whole, fraction, exponent = s:match("^%s*([+-]?)(%d*)%.?(%d*)([eE]?[+-]?%d*)%s*$")
  if not sign or #whole + #fraction == 0 or (exponent ~= "" and not exponent:find("^[eE][+-]?%d+$"))
      or (not s:find(".", 1, true) and fraction ~= "") then
    return nil, "not a decimal number: " .. ("%q"):format(s)
  end
  local scale = #fraction - (exponent ~= "" and tonumber(exponent:sub(2)) or 0)
  if scale < -2147483648 or scale > 2147483647 then
    return nil, "the exponent of " .. s .. " is out of range"
  end
  local unscaled = codec.varint_from_string(sign .. whole .. fraction)
  return unscaled, scale
end

---------------------------------------------------------------- dates and times

-- Days since 1970-01-01 of a proleptic Gregorian date.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local DAYS_IN_MONTH = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

-- "YYYY-MM-DD" -> days since the Unix epoch, or nil and why.
function codec.date_from_string(s)
  local sign, y, m, d = s:match("^([+-]?)(%d%d%d%d+)%-(%d%d)%-(%d%d)$")
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if not y or m < 1 or m > 12 or d < 1 or d > DAYS_IN_MONTH[m]
      or (m == 2 and d == 29 and not (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0))) then
    return nil, "not a date (YYYY-MM-DD): " .. ("%q"):format(s)
  end
  if sign == "-" then y = -y end
  return days_from_civil(y, m, d)
end

-- "HH:MM:SS[.fraction]" -> nanoseconds since midnight, or nil and why.
function codec.time_from_string(s)
  local h, m, sec, fraction = s:match("^(%d%d?):(%d%d):(%d%d)%.?(%d*)$")
  h, m, sec = tonumber(h), tonumber(m), tonumber(sec)
  if not h or h > 23 or m > 59 or sec > 59 or #fraction > 9 then
    return nil, "not a time of day (HH:MM:SS[.fffffffff]): " .. ("%q"):format(s)
  end
  local nanos = tonumber(fraction .. ("0"):rep(9 - #fraction))
  return ((h * 60 + m) * 60 + sec) * 1e9 + nanos
end

return codec
