-- A minimal test harness for the LuaJIT tests: named checks, a closing
-- "N passed, N failed" line and the exit status.
local harness = { passed = 0, failed = 0 }

function harness.check(name, ok, detail)
  if ok then
    harness.passed = harness.passed + 1
  else
    harness.failed = harness.failed + 1
    io.stderr:write("FAIL ", name, detail and (": " .. tostring(detail)) or "", "\n")
  end
end

function harness.equal(name, got, want)
  harness.check(name, got == want, ("got %s, want %s"):format(tostring(got), tostring(want)))
end

-- Runs `fn` as one check: an error raised inside fails it.
function harness.test(name, fn)
  local ok, err = pcall(fn)
  harness.check(name, ok, err)
end

function harness.finish()
  print(("%d passed, %d failed"):format(harness.passed, harness.failed))
  os.exit(harness.failed == 0 and harness.passed > 0 and 0 or 1)
end

return harness
