--- Scenario reports: report.md and topology.svg (Graphviz `dot`, Debian package graphviz).
--
--   report.write(dir, data) -> {markdown = path, svg = path} or nil, err
--   data = {
--     title,
--     topology = {                     -- what the picture shows
--       accounts = { {name="A", id=, vpc={id=, cidr=}, subnets={{id=, cidr=}}, workload={id=, label=}}, ... },
--       tgw = {id=, account=, route_table=},
--     },
--     trace = result of model:trace (optional): its hops are drawn and listed, the blocking one red,
--     checks = { {name=, ok=, detail=, seconds=} },      -- verify's checks, in order
--     prove = { {case=, reachable=, code=, blocked_at=} }, -- prove's table
--     timings = { {phase=, seconds=} },
--   }
-- Nothing here reaches AWS: it formats what the scenario collected.
-- @module awsnet.report
local cjson = require "cjson"
local errors = require "awsnet.errors"
local process = require "awsnet.svc.process"

local report = {}

-- A hop's component as text (an id, a table describing it, or a whole hop).
-- (Documented below, where it is exported.)
local function component_id(c)
  if type(c) == "table" then
    if c.component ~= nil then return component_id(c.component) end
    return tostring(c.id or c.name or c.arn or "?")
  end
  return tostring(c)
end
--- A hop's component as text: an id, a table describing it ({id}, {name}, {arn}) or a whole hop.
-- @function component_id
-- @param c the component
-- @treturn string its id
report.component_id = component_id

-- A hop's rule as short text.
local function rule_text(r)
  if r == nil then return "" end
  if type(r) ~= "table" then return tostring(r) end
  local parts = {}
  for _, k in ipairs({ "rule_number", "action", "cidr", "destination", "target", "protocol", "ports", "port_range" }) do
    if r[k] ~= nil then parts[#parts + 1] = k .. "=" .. tostring(r[k]) end
  end
  if #parts == 0 and r.text then return tostring(r.text) end
  return table.concat(parts, " ")
end

local function md_escape(s)
  return (tostring(s == nil and "" or s):gsub("|", "\\|"):gsub("\n", " "))
end

local function seconds(s)
  return s and string.format("%.2f s", s) or ""
end

local function hop_rows(out, title, leg, blocked)
  if not leg or not leg.hops then return end
  out[#out + 1] = string.format("\n### %s (%s)\n", title, leg.ok and "passes" or "blocked")
  out[#out + 1] = "| # | component | kind | rule | verdict |"
  out[#out + 1] = "|---|---|---|---|---|"
  for i, h in ipairs(leg.hops) do
    local id = component_id(h.component)
    local mark = (blocked and id == blocked and h.verdict ~= "accept" and h.verdict ~= "allow") and " **(blocks)**" or ""
    out[#out + 1] = string.format("| %d | %s%s | %s | %s | %s |", i, md_escape(id), mark, md_escape(h.kind),
      md_escape(rule_text(h.rule)), md_escape(h.verdict))
  end
end

-- A "## title" section with a table of `rows`, each turned into its cells by `cells(row)`.
local function md_table(out, title, header, rows, cells)
  if not rows or #rows == 0 then return end
  out[#out + 1] = "\n## " .. title .. "\n"
  out[#out + 1] = "| " .. table.concat(header, " | ") .. " |"
  out[#out + 1] = string.rep("|---", #header) .. "|"
  for _, row in ipairs(rows) do
    local c = cells(row)
    for i = 1, #header do c[i] = md_escape(c[i]) end
    out[#out + 1] = "| " .. table.concat(c, " | ") .. " |"
  end
end

--- The Markdown text of the report.
-- @tparam table data the report's data (module comment)
-- @treturn string the Markdown
function report.markdown(data)
  local out = { "# " .. (data.title or "awsnet report"), "" }
  local topo = data.topology
  if topo then
    out[#out + 1] = "## Topology\n"
    for _, a in ipairs(topo.accounts or {}) do
      local subnets = {}
      for _, s in ipairs(a.subnets or {}) do subnets[#subnets + 1] = string.format("%s (%s)", s.id, s.cidr) end
      out[#out + 1] = string.format("- account %s %s: VPC %s (%s), subnets %s%s", a.name, a.id or "",
        a.vpc and a.vpc.id or "?", a.vpc and a.vpc.cidr or "?", table.concat(subnets, ", "),
        a.workload and (", " .. md_escape(a.workload.label or a.workload.id)) or "")
    end
    if topo.tgw then
      out[#out + 1] = string.format("- transit gateway %s in account %s, route table %s", topo.tgw.id,
        topo.tgw.account or "?", topo.tgw.route_table or "?")
    end
  end
  md_table(out, "Checks", { "check", "result", "detail", "time" }, data.checks, function(c)
    local status = c.status or (c.ok and "pass" or "FAIL")
    return { c.name, status == "FAIL" and "**FAIL**" or status, c.detail, seconds(c.seconds) }
  end)
  local tr = data.trace
  if tr then
    out[#out + 1] = "\n## Path Lambda → database\n"
    out[#out + 1] = string.format("Result: **%s**%s", tr.reachable and "reachable" or "not reachable",
      tr.code and (" — " .. tostring(tr.code) .. (tr.blocked_at and (" at " .. component_id(tr.blocked_at)) or "")) or "")
    local blocked = tr.blocked_at and component_id(tr.blocked_at)
    hop_rows(out, "Forward", tr.forward, blocked)
    hop_rows(out, "Return", tr.ret, blocked)
    if tr.assumptions and #tr.assumptions > 0 then
      out[#out + 1] = "\nAssumptions:\n"
      for _, a in ipairs(tr.assumptions) do out[#out + 1] = "- " .. md_escape(type(a) == "table" and (a.text or a.code) or a) end
    end
  end
  md_table(out, "Prove: what each piece does", { "configuration", "path", "code", "blocking hop" }, data.prove,
    function(p)
      return { p.case, p.reachable and "reachable" or "blocked", p.code, p.blocked_at and component_id(p.blocked_at) }
    end)
  md_table(out, "Timings", { "phase", "time" }, data.timings, function(t) return { t.phase, seconds(t.seconds) } end)
  out[#out + 1] = ""
  return table.concat(out, "\n")
end

-- ------------------------------------------------------------------------------------------
-- The picture

local function dot_quote(s)
  return '"' .. tostring(s):gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("\n", "\\n") .. '"'
end

--- Builds the graph: clusters per account and VPC, the TGW and its route table, then the hops of
-- the trace as numbered edges; hop components not in the topology become small nodes.
-- @tparam table data the report's data (module comment)
-- @treturn string Graphviz source
function report.dot(data)
  local lines = { "digraph topology {", '  graph [rankdir=LR, fontname="Helvetica", fontsize=11, compound=true];',
    '  node [shape=box, style="rounded,filled", fillcolor="#f4f6f8", fontname="Helvetica", fontsize=10];',
    '  edge [fontname="Helvetica", fontsize=9];' }
  local known = {}
  local tr = data.trace
  local blocked = tr and tr.blocked_at and component_id(tr.blocked_at)

  local function node(id, label, extra)
    known[id] = true
    local red = blocked == id and ', fillcolor="#f8d0d0", color="red", penwidth=2' or ""
    return string.format("    %s [label=%s%s%s];", dot_quote(id), dot_quote(label), extra or "", red)
  end

  local topo = data.topology or { accounts = {} }
  local hops = tr and tr.forward and tr.forward.hops or {}
  -- a hop node of the account it belongs to (as the evaluator says) is drawn in that account's box
  local function hop_node(h)
    return node(component_id(h.component), (h.kind and (h.kind .. "\n") or "") .. component_id(h.component),
      ", shape=ellipse")
  end
  for i, a in ipairs(topo.accounts or {}) do
    lines[#lines + 1] = string.format("  subgraph cluster_account_%d {", i)
    lines[#lines + 1] = "    label=" .. dot_quote("account " .. a.name .. (a.id and (" " .. a.id) or "")) .. ";"
    lines[#lines + 1] = '    style=dashed; color="#888888";'
    if a.vpc then
      lines[#lines + 1] = string.format("    subgraph cluster_vpc_%d {", i)
      lines[#lines + 1] = "    label=" .. dot_quote("VPC " .. a.vpc.id .. "\n" .. (a.vpc.cidr or "")) .. ";"
      lines[#lines + 1] = '    style="rounded"; color="#3b7dd8";'
      for _, s in ipairs(a.subnets or {}) do
        lines[#lines + 1] = node(s.id, "subnet " .. s.id .. "\n" .. (s.cidr or ""))
      end
      if a.workload then
        lines[#lines + 1] = node(a.workload.id, a.workload.label or a.workload.id, ', fillcolor="#fff2cc"')
      end
      lines[#lines + 1] = "    }"
    end
    if topo.tgw and topo.tgw.account == a.name then
      lines[#lines + 1] = node(topo.tgw.id, "Transit Gateway\n" .. topo.tgw.id, ', shape=hexagon, fillcolor="#e2f0d9"')
      if topo.tgw.route_table then
        lines[#lines + 1] = node(topo.tgw.route_table, "TGW route table\n" .. topo.tgw.route_table, ', shape=note')
        lines[#lines + 1] = string.format("    %s -> %s [style=dotted, arrowhead=none];", dot_quote(topo.tgw.id),
          dot_quote(topo.tgw.route_table))
      end
    end
    for _, h in ipairs(hops) do
      if a.id and h.account == a.id and not known[component_id(h.component)] then lines[#lines + 1] = hop_node(h) end
    end
    lines[#lines + 1] = "  }"
  end

  if #hops > 0 then
    -- the path starts at A's workload (first account) and, when it gets there, ends at B's
    local accts = topo.accounts or {}
    local prev = accts[1] and accts[1].workload and accts[1].workload.id
    for i, h in ipairs(hops) do
      local id = component_id(h.component)
      if not known[id] then lines[#lines + 1] = hop_node(h) end
      if prev and prev ~= id then
        local bad = blocked == id
        lines[#lines + 1] = string.format("  %s -> %s [label=%s, color=%s, penwidth=2];", dot_quote(prev),
          dot_quote(id), dot_quote(tostring(i)), bad and '"red"' or '"#1f5fbf"')
      end
      prev = id
    end
    local last = accts[#accts] and accts[#accts].workload
    if tr.reachable and prev and last and #accts > 1 then
      lines[#lines + 1] = string.format("  %s -> %s [color=\"#1f5fbf\", penwidth=2];", dot_quote(prev), dot_quote(last.id))
    end
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

--- Renders Graphviz source to SVG text with `dot`; nil, err when dot is missing or fails.
-- @tparam string dot_source Graphviz source
-- @treturn string the SVG, or nil, err ("graphviz")
function report.svg(dot_source)
  local dir = process.tempdir("awsnet-report")
  process.write_file(dir .. "/g.dot", dot_source)
  local ok, err = process.run(string.format("dot -Tsvg -o %s %s", process.quote(dir .. "/g.svg"),
    process.quote(dir .. "/g.dot")))
  local svg = ok and process.read_file(dir .. "/g.svg")
  process.remove(dir)
  if not svg then
    return errors.fail("graphviz", "dot failed (Debian package graphviz): " .. tostring(err and err.message))
  end
  return svg
end

-- The trace's fields the report uses, as plain data (a trace result may carry methods).
local function plain_trace(tr)
  if not tr then return nil end
  local function leg(l)
    if not l then return nil end
    local hops = {}
    for i, h in ipairs(l.hops or {}) do
      hops[i] = { component = component_id(h.component), kind = h.kind, rule = h.rule and rule_text(h.rule) or nil,
        verdict = h.verdict, account = h.account }
    end
    return { ok = l.ok, hops = hops }
  end
  local assumptions = {}
  for i, a in ipairs(tr.assumptions or {}) do assumptions[i] = type(a) == "table" and (a.text or a.code) or tostring(a) end
  return { reachable = tr.reachable, code = tr.code, blocked_at = tr.blocked_at and component_id(tr.blocked_at),
    forward = leg(tr.forward), ret = leg(tr.ret), assumptions = assumptions }
end

local SECTIONS = { "topology", "trace", "checks", "prove" }

-- Sections of an earlier report in `dir` (report.json), for merging.
local function earlier(dir)
  local text = process.read_file(dir .. "/report.json")
  local ok, data = pcall(cjson.decode, text or "")
  return ok and type(data) == "table" and data or {}
end

--- Writes report.md, topology.svg and report.json (the data) into `dir`; returns their paths or
-- nil, err. With opts.merge, sections this data lacks (say verify's checks when prove writes) and
-- earlier timings are taken from the report already in `dir`, so one run gives one report.
-- @tparam string dir an existing folder
-- @tparam table data the report's data (module comment)
-- @tparam[opt] table opts {merge}
-- @treturn table {markdown, svg, json} paths, or nil, err ("report" when a file cannot be
-- written, "graphviz")
function report.write(dir, data, opts)
  data = setmetatable({}, { __index = data })
  data.trace = plain_trace(data.trace)
  if opts and opts.merge then
    local old = earlier(dir)
    for _, k in ipairs(SECTIONS) do
      if data[k] == nil then data[k] = old[k] end
    end
    local timings = {}
    for _, t in ipairs(old.timings or {}) do timings[#timings + 1] = t end
    for _, t in ipairs(data.timings or {}) do timings[#timings + 1] = t end
    data.timings = timings
  end
  local saved = { title = data.title }
  for _, k in ipairs(SECTIONS) do saved[k] = data[k] end
  saved.timings = data.timings
  process.write_file(dir .. "/report.json", cjson.encode(saved))
  local md = dir .. "/report.md"
  local f, ferr = io.open(md, "w")
  if not f then return errors.fail("report", "cannot write " .. md .. ": " .. tostring(ferr)) end
  f:write(report.markdown(data))
  f:close()
  local svg, err = report.svg(report.dot(data))
  if not svg then return nil, err end
  local path = dir .. "/topology.svg"
  process.write_file(path, svg)
  return { markdown = md, svg = path, json = dir .. "/report.json" }
end

return report
