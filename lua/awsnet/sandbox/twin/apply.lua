--- Carries out a change of the network twin's plan: the difference between the plan realised and
-- the new one, as one shell script run by a child process (so the sandbox's server loop is not
-- stalled): one `ip -batch` in the host for namespaces and veth pairs, then per namespace that
-- changed one `ip -batch` of deletions (those of a removed link are already gone: errors ignored),
-- one of additions (errors fail the change) and one `nft -f` rule set, and last the namespaces no
-- longer planned, with whatever still runs in them.
-- @module awsnet.sandbox.twin.apply
local process = require "awsnet.svc.process"

local apply = {}

local q = process.quote

-- The sysctls of a fresh namespace: a router forwards and sends no redirects; no reverse-path
-- filter (routing is by policy); no IPv6 at all (the twin is IPv4, as the evaluator is).
local SYSCTLS = {
  "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
  "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.default.send_redirects=0",
  "net.ipv4.conf.all.accept_redirects=0", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
}

-- The keys of `t`, sorted: the script does the same in the same order each time.
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function by_order(lines)
  table.sort(lines, function(a, b)
    if a.order ~= b.order then return a.order < b.order end
    return a.key < b.key
  end)
  return lines
end

--- The script that takes the twin from plan `old` (nil: nothing) to plan `new`, and the files it
-- reads, or nil when nothing changes. `old.busy` names the namespaces processes were started in.
-- @tparam ?table old the plan realised
-- @tparam table new the plan wanted
-- @tparam string stem the start of the paths of the script and its files
-- @treturn ?string the script's path
-- @treturn ?{string,...} every file written (the script's too), to remove once it ran
function apply.script(old, new, stem)
  old = old or { namespaces = {}, links = {} }
  local sh = { "#!/bin/sh", "set -u", "fail=0" }
  local files = {}
  local function file(text)
    local path = string.format("%s.%d", stem, #files + 1)
    files[#files + 1] = path
    process.write_file(path, text)
    return path
  end
  local host = {}
  local names = sorted_keys(new.namespaces)
  local created = {}
  for _, name in ipairs(names) do
    if not old.namespaces[name] then
      host[#host + 1] = "netns add " .. name
      created[name] = true
    end
  end
  local link_keys = sorted_keys(new.links)
  for _, key in ipairs(link_keys) do
    local l = new.links[key]
    if not old.links[key] then
      host[#host + 1] = string.format("link add %s netns %s address %s type veth peer name %s netns %s address %s",
        l.name, l.a_ns, l.mac, l.name, l.b_ns, l.mac)
    end
  end
  local changed = #host > 0
  if #host > 0 then
    sh[#sh + 1] = "ip -batch " .. q(file(table.concat(host, "\n") .. "\n")) .. " || fail=1"
  end
  -- each namespace's change in its own background job: they are independent of one another
  local failed = stem .. ".failed"
  files[#files + 1] = failed
  for _, name in ipairs(names) do
    local n, o = new.namespaces[name], old.namespaces[name] or { lines = {} }
    local want, had = {}, {}
    for _, l in ipairs(n.lines) do want[l.key] = l end
    for _, l in ipairs(o.lines) do had[l.key] = l end
    local dels, adds = {}, {}
    for key, l in pairs(had) do
      if (not want[key] or want[key].add ~= l.add) and l.del then dels[#dels + 1] = l end
    end
    for key, l in pairs(want) do
      if not had[key] or had[key].add ~= l.add then adds[#adds + 1] = l end
    end
    local ns = q(name)
    local block = {}
    -- hosts keep the kernel's defaults (no forwarding); routers forward, without redirects
    if created[name] and n.kind ~= "eni" then
      block[#block + 1] = string.format("nsenter --net=/run/netns/%s sysctl -q -w %s >/dev/null", ns,
        table.concat(SYSCTLS, " "))
    end
    if created[name] then table.insert(adds, { key = " lo", add = "link set lo up", order = 0 }) end
    if #dels > 0 then
      local text, sorted = {}, by_order(dels)
      for i, l in ipairs(sorted) do text[#sorted - i + 1] = l.del end
      block[#block + 1] = string.format("{ ip -n %s -force -batch %s 2>/dev/null; true; }", ns,
        q(file(table.concat(text, "\n") .. "\n")))
    end
    if #adds > 0 then
      local text = {}
      for i, l in ipairs(by_order(adds)) do text[i] = l.add end
      block[#block + 1] = string.format("ip -n %s -force -batch %s", ns, q(file(table.concat(text, "\n") .. "\n")))
    end
    if n.nft and n.nft ~= o.nft then
      -- nsenter enters the network namespace only (ip netns exec would also remount /sys)
      block[#block + 1] = string.format("nsenter --net=/run/netns/%s nft -f %s", ns, q(file(n.nft)))
    end
    if #block > 0 then
      changed = true
      sh[#sh + 1] = string.format("( %s ) || : > %s &", table.concat(block, " && "), q(failed))
    end
  end
  -- links no longer planned between namespaces that stay (one end's deletion takes the other)
  local old_links = sorted_keys(old.links)
  for _, key in ipairs(old_links) do
    local l = old.links[key]
    if not new.links[key] and new.namespaces[l.a_ns] then
      sh[#sh + 1] = string.format("ip -n %s link del %s 2>/dev/null", q(l.a_ns), q(l.name))
      changed = true
    end
  end
  local gone = {}
  for name in pairs(old.namespaces) do
    if not new.namespaces[name] then gone[#gone + 1] = name end
  end
  table.sort(gone)
  sh[#sh + 1] = "wait"
  sh[#sh + 1] = "[ -e " .. q(failed) .. " ] && fail=1"
  if #gone > 0 then
    local lines = {}
    for _, name in ipairs(gone) do
      -- a process still in a namespace would keep it alive without its name
      if (old.busy or {})[name] then sh[#sh + 1] = apply.remove_command(name) end
      lines[#lines + 1] = "netns del " .. name
    end
    sh[#sh + 1] = "ip -force -batch " .. q(file(table.concat(lines, "\n") .. "\n")) .. " 2>/dev/null"
    changed = true
  end
  if not changed then
    for _, f in ipairs(files) do os.remove(f) end
    return nil
  end
  sh[#sh + 1] = "exit $fail"
  return file(table.concat(sh, "\n") .. "\n"), files
end

--- The shell command that removes one namespace: the processes in it first (a namespace whose
-- name is gone lives on while a process holds it), then the namespace with its links.
-- @tparam string name the namespace
-- @treturn string the command
function apply.remove_command(name)
  return string.format("ip netns pids %s 2>/dev/null | xargs -r kill -KILL 2>/dev/null; ip netns del %s 2>/dev/null",
    q(name), q(name))
end

--- The shell command that removes every namespace whose name starts with `prefix` .. "-" (the
-- watchdog's and stop's), and only those.
-- @tparam string prefix the sandbox's prefix
-- @treturn string the command
function apply.remove_all_command(prefix)
  return string.format("for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^%s-'); do " ..
    "ip netns pids \"$n\" 2>/dev/null | xargs -r kill -KILL 2>/dev/null; ip netns del \"$n\" 2>/dev/null; done", prefix)
end

return apply
