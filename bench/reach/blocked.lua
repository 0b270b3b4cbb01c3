--- bench/reach's blocked-path figure: what computing a failed trace's blocked path (every
-- blocker with its component, code and change as data, and the fix set: `result.blockers` and
-- `result.fix`) costs against a plain failed trace that reports its blocking hop
-- (`result.blocked_at`, which walks again and puts the hops in words), on the same model and
-- queries, side by side in one run. Target: at most 2x, on the two kinds of failure below taken
-- together. Each kind is printed too: a path refused late (by the destination's security group)
-- costs less than its plain trace, which puts every hop in words; a path refused at its third hop
-- costs about 3x, as the evaluator then walks nine times as many hops as the plain trace (its C
-- walk alone is printed first). Both leave their sentences to first read (the plain trace its
-- `fix` line, the blocked path each setting and change): the cost with every setting and change
-- in words is printed beside it, without a target.
-- Two kinds of failed queries on the generated model: tcp/3306 to a VPC the source routes to
-- (the destination's security group refuses it: one blocker) and to a VPC it has no route to
-- (no route there and back, and the security group: three blockers, past two assumed connections).
local blocked_bench = {}

local N, ROUNDS = 20000, 5

-- Best of ROUNDS runs (as timeit does) of N calls of each function on the queries, in calls per
-- second; the functions take turns within each round, so a busy moment of the machine falls on
-- all of them alike.
local function rates(queries, fns)
  local best = {}
  for _ = 1, ROUNDS do
    for k, one in ipairs(fns) do
      local t0 = os.clock()
      for n = 1, N do one(queries[n % #queries + 1]) end
      best[k] = math.max(best[k] or 0, N / (os.clock() - t0))
    end
  end
  return table.unpack(best)
end

--- Measures and prints the figures; returns whether the target is met (measured once more if not).
-- @param model the loaded bench model
-- @tparam function report bench/reach's report(what, value, unit, target, higher_is_better)
-- @tparam table ids {eni = function(vpc, k) -> ENI id, peer = function(i, n) -> VPC index}
-- @treturn boolean the target met
function blocked_bench.run(model, report, ids)
  local kinds = { { "security group refuses (1 blocker)", function(i) return ids.peer(i, 1 + i % 5) end },
    { "no route either way + security group (3 blockers)", function(i) return ids.peer(i, 100 + i % 7) end } }
  local all = {}
  local sets = {}
  for _, kind in ipairs(kinds) do
    local qs = {}
    for i = 0, 999 do
      qs[#qs + 1] = { src = ids.eni(i, 1 + i % 3), dst = ids.eni(kind[2](i), 1 + (i + 1) % 3), protocol = "tcp",
        port = 3306 }
    end
    -- what the figure is about: each fails, and its blocked path goes through
    for _, q in ipairs(qs) do
      local r = assert(model:trace(q))
      assert(not r.reachable and #r.blockers >= 1 and r.blocked_path.complete, "bench: unexpected blocked path")
      all[#all + 1] = q
    end
    sets[#sets + 1] = { name = kind[1], queries = qs }
  end
  sets[#sets + 1] = { name = "both kinds", queries = all, target = true }
  local function plain(q) return model:trace(q).blocked_at end
  local function blocked_path(q)
    local r = model:trace(q)
    return r.blockers, r.fix
  end
  local function in_words(q)
    local r = model:trace(q)
    for _, b in ipairs(r.blockers) do local _ = b.setting .. b.change end
    return r.fix
  end
  -- the evaluator's share: the C walk past every blocker against the plain walk that stops at the
  -- first, on the packed queries
  local m = model._m
  for _, s in ipairs(sets) do
    s.packed = {}
    for i, q in ipairs(s.queries) do s.packed[i] = rawget(model:trace(q), "_q") end
  end
  local function walk(pq) return m:walk(pq) end
  local function walk_past(pq) return m:walk(pq, true) end
  local function measure(tag)
    local ok = true
    for _, s in ipairs(sets) do
      local w, wp = rates(s.packed, { walk, walk_past })
      print(string.format("evaluator, %s: plain walk %.0f/s, walk past every blocker %.0f/s (%.2fx)", s.name, w, wp,
        w / wp))
    end
    for _, s in ipairs(sets) do
      local p, b, words = rates(s.queries, { plain, blocked_path, in_words })
      print(string.format("blocked path, %s: plain failed trace %.0f/s, blocked path %.0f/s (%.1fx), "
        .. "with every setting and change in words %.0f/s (%.1fx)", s.name, p, b, p / b, words, p / words))
      if s.target then ok = report("blocked path / failed trace, " .. s.name .. tag, p / b, "x", 2, false) and ok end
    end
    return ok
  end
  if measure("") then return true end
  print("reach: measuring the blocked-path figures again")
  return measure(" (re-run)")
end

return blocked_bench
