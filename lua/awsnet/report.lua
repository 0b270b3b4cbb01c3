--- Scenario reports: report.md, topology.svg and prove.svg (drawn as SVG here; report.dot and
-- report.svg still give the older Graphviz picture).
--
--   report.write(dir, data) -> {markdown = path, svg = path} or nil, err
--   data = {
--     title,
--     topology = {                     -- what the picture shows
--       accounts = { {name="A", id=, vpc={id=, cidr=}, subnets={{id=, cidr=, role=, route_table=, nacl=,
--         items={{id=, label=, sgs={sg ids}}}}}, workload={id=, label=}}, ... },  -- items: ENIs, attachments
--       tgw = {id=, account=, route_table=},
--     },
--     trace = result of model:trace (optional): its hops are drawn and listed, the blocking one red;
--       when it is not reachable, its blocked path is drawn and every blocker marked red, listed
--       with its setting and change, and the fix set under them,
--     checks = { {name=, ok=, detail=, seconds=} },      -- verify's checks, in order
--     readback = text,                                   -- what the Lambda read back (mysql layout)
--     prove = { {case=, reachable=, code=, blocked_at=, twin=} }, -- prove's table (twin: {connected,
--                                                     -- resolved, moved} on the network twin)
--     reverse = { {faults=, blockers=, fix=, fixed=} },   -- prove in reverse: faults at once, fix sets
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

-- `blocking`: the set of the ids of the components that refuse the packet.
local function hop_rows(out, title, leg, blocking, status)
  if not leg or not leg.hops then return end
  out[#out + 1] = string.format("\n### %s (%s)\n", title, status or (leg.ok and "passes" or "blocked"))
  out[#out + 1] = "| # | component | kind | rule | verdict |"
  out[#out + 1] = "|---|---|---|---|---|"
  for i, h in ipairs(leg.hops) do
    local id = component_id(h.component)
    local mark = (blocking[id] and (h.verdict == "deny" or h.verdict == "drop")) and " **(blocks)**" or ""
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
  if data.readback and data.readback ~= "" then
    out[#out + 1] = "\n## Read back through the Lambda\n"
    out[#out + 1] = "```\n" .. data.readback:gsub("\n+$", "") .. "\n```"
  end
  local tr = data.trace
  if tr then
    out[#out + 1] = "\n## Path Lambda → database\n"
    out[#out + 1] = string.format("Result: **%s**%s", tr.reachable and "reachable" or "not reachable",
      tr.code and (" — " .. tostring(tr.code) .. (tr.blocked_at and (" at " .. component_id(tr.blocked_at)) or "")) or "")
    local blocking = {}
    if tr.blocked_at then blocking[component_id(tr.blocked_at)] = true end
    for _, b in ipairs(tr.blockers or {}) do blocking[component_id(b.component)] = true end
    hop_rows(out, "Forward", tr.forward, blocking)
    hop_rows(out, "Return", tr.ret, blocking)
    if tr.blockers and #tr.blockers > 0 then
      md_table(out, "Blockers: every setting on the path that refuses the packet", { "#", "leg", "component",
        "kind", "code", "setting", "smallest change" }, tr.blockers, function(b)
          return { tostring(b.n), b.direction, component_id(b.component), b.kind, b.code, b.setting, b.change }
        end)
      local path = tr.blocked_path or {}
      out[#out + 1] = "\n" .. (path.complete and "The blocked path is complete: past every blocker it reaches the "
        .. "destination and comes back." or ("The blocked path stops: " .. md_escape(path.stopped or "?")))
      for _, a in ipairs(path.assumptions or {}) do out[#out + 1] = "- assumed: " .. md_escape(a) end
      hop_rows(out, "Blocked path, forward", path.forward, blocking, "past every blocker")
      hop_rows(out, "Blocked path, return", path.ret, blocking, "past every blocker")
      if tr.fix and #tr.fix > 0 then
        out[#out + 1] = "\n### Fix set\n"
        for _, c in ipairs(tr.fix) do out[#out + 1] = "- " .. md_escape(c) end
      end
    end
    if tr.assumptions and #tr.assumptions > 0 then
      out[#out + 1] = "\nAssumptions:\n"
      for _, a in ipairs(tr.assumptions) do out[#out + 1] = "- " .. md_escape(type(a) == "table" and (a.text or a.code) or a) end
    end
  end
  -- with the sandbox's network twin, what the kernel did with the same fault
  local on_twin = data.prove and data.prove[1] and data.prove[1].twin
  local header = { "configuration", "path", "code", "blocking hop" }
  if on_twin then header[5] = "on the network twin" end
  md_table(out, "Prove: what each piece does", header, data.prove,
    function(p)
      local row = { p.case, p.reachable and "reachable" or "blocked", p.code, p.blocked_at and component_id(p.blocked_at) }
      if on_twin then
        local t = p.twin or {}
        row[5] = (t.connected and "connected" or (t.resolved == false and "name not resolved" or "connection failed")) ..
          (t.moved and ("; drop counted at " .. t.moved) or "")
      end
      return row
    end)
  md_table(out, "Prove in reverse: pieces removed at once, and the fix set awsnet proposes", { "removed",
    "blockers (path order)", "fix set", "fixed" }, data.reverse, function(p)
      return { table.concat(p.faults or {}, " + "), table.concat(p.blockers or {}, "; "), table.concat(p.fix or {}, "; "),
        p.fixed and "reachable" or "**still blocked**" }
    end)
  md_table(out, "Timings", { "phase", "time" }, data.timings, function(t) return { t.phase, seconds(t.seconds) } end)
  out[#out + 1] = ""
  return table.concat(out, "\n")
end

-- ------------------------------------------------------------------------------------------
-- Tables as the mysql client lays them out

-- East Asian Wide and Fullwidth ranges (Unicode's EastAsianWidth.txt, W and F; the blocks that
-- matter for text: CJK, kana, Hangul, fullwidth forms, the wide emoji).
local WIDE = {
  { 0x1100, 0x115F }, { 0x231A, 0x231B }, { 0x2329, 0x232A }, { 0x23E9, 0x23EC }, { 0x23F0, 0x23F0 },
  { 0x23F3, 0x23F3 }, { 0x25FD, 0x25FE }, { 0x2614, 0x2615 }, { 0x2648, 0x2653 }, { 0x267F, 0x267F },
  { 0x2693, 0x2693 }, { 0x26A1, 0x26A1 }, { 0x26AA, 0x26AB }, { 0x26BD, 0x26BE }, { 0x26C4, 0x26C5 },
  { 0x26CE, 0x26CE }, { 0x26D4, 0x26D4 }, { 0x26EA, 0x26EA }, { 0x26F2, 0x26F3 }, { 0x26F5, 0x26F5 },
  { 0x26FA, 0x26FA }, { 0x26FD, 0x26FD }, { 0x2705, 0x2705 }, { 0x270A, 0x270B }, { 0x2728, 0x2728 },
  { 0x274C, 0x274C }, { 0x274E, 0x274E }, { 0x2753, 0x2755 }, { 0x2757, 0x2757 }, { 0x2795, 0x2797 },
  { 0x27B0, 0x27B0 }, { 0x27BF, 0x27BF }, { 0x2B1B, 0x2B1C }, { 0x2B50, 0x2B50 }, { 0x2B55, 0x2B55 },
  { 0x2E80, 0x303E }, { 0x3041, 0x33FF }, { 0x3400, 0x4DBF }, { 0x4E00, 0x9FFF }, { 0xA000, 0xA4CF },
  { 0xA960, 0xA97F }, { 0xAC00, 0xD7A3 }, { 0xF900, 0xFAFF }, { 0xFE10, 0xFE19 }, { 0xFE30, 0xFE6F },
  { 0xFF00, 0xFF60 }, { 0xFFE0, 0xFFE6 }, { 0x16FE0, 0x16FE4 }, { 0x17000, 0x18CFF }, { 0x1B000, 0x1B2FF },
  { 0x1F004, 0x1F004 }, { 0x1F0CF, 0x1F0CF }, { 0x1F18E, 0x1F18E }, { 0x1F191, 0x1F19A },
  { 0x1F200, 0x1F251 }, { 0x1F300, 0x1F64F }, { 0x1F680, 0x1F6FF }, { 0x1F900, 0x1F9FF },
  { 0x1FA70, 0x1FAFF }, { 0x20000, 0x2FFFD }, { 0x30000, 0x3FFFD },
}

local function wide(cp)
  local lo, hi = 1, #WIDE
  while lo <= hi do
    local mid = (lo + hi) // 2
    local r = WIDE[mid]
    if cp < r[1] then hi = mid - 1 elseif cp > r[2] then lo = mid + 1 else return true end
  end
  return false
end

--- The cells a UTF-8 string takes on a terminal: East Asian Wide and Fullwidth characters
-- (テ, 漢, Ａ) count 2, every other character 1; bytes that are not UTF-8 count 1 each.
-- @tparam string s the text
-- @treturn integer its display width
function report.display_width(s)
  s = tostring(s)
  local n, i = 0, 1
  while i <= #s do
    local ok, cp = pcall(utf8.codepoint, s, i)
    if ok then
      n = n + (wide(cp) and 2 or 1)
      i = i + #utf8.char(cp)
    else
      n, i = n + 1, i + 1
    end
  end
  return n
end

local function is_null(v) return v == nil or v == cjson.null end

--- A result laid out as the mysql (and mariadb) client prints a table:
-- (option `--table`) +---+ borders, a column as wide as its longest value or name in bytes (at
-- least 4, for NULL, when it may be NULL), values padded by display width so that double-width
-- characters line up, numbers right-aligned, NULL as NULL.
-- @tparam table result {columns = {{name=, numeric=, nullable=}}, rows = {{value, ...}}} (a value is
-- text, a number, nil or cjson.null for NULL)
-- @treturn string the table, a line per row, ending in a newline ("" for no columns)
function report.mysql_table(result)
  local cols, rows = result.columns or {}, result.rows or {}
  if #cols == 0 then return "" end
  local widths = {}
  for i, c in ipairs(cols) do
    local w = #tostring(c.name)
    for _, r in ipairs(rows) do
      if not is_null(r[i]) then w = math.max(w, #tostring(r[i])) end
    end
    if w < 4 and c.nullable then w = 4 end
    widths[i] = w
  end
  local function border()
    local parts = {}
    for i = 1, #cols do parts[i] = string.rep("-", widths[i] + 2) end
    return "+" .. table.concat(parts, "+") .. "+\n"
  end
  local function line(values, align_numbers)
    local parts = {}
    for i, c in ipairs(cols) do
      local text = is_null(values[i]) and "NULL" or tostring(values[i])
      local pad = string.rep(" ", math.max(0, widths[i] - report.display_width(text)))
      parts[i] = " " .. ((align_numbers and c.numeric) and (pad .. text) or (text .. pad)) .. " "
    end
    return "|" .. table.concat(parts, "|") .. "|\n"
  end
  local names = {}
  for i, c in ipairs(cols) do names[i] = c.name end
  local out = { border(), line(names, false), border() }
  for _, r in ipairs(rows) do out[#out + 1] = line(r, true) end
  out[#out + 1] = border()
  return table.concat(out)
end

-- ------------------------------------------------------------------------------------------
-- The picture, drawn directly as SVG: nested boxes account -> VPC -> subnet -> ENI (its security
-- groups inside), each subnet's route table and network ACL at the subnet, the Transit Gateway
-- and its route table between the accounts; the path as numbered arrows, forward solid blue and
-- return dashed orange; the blocking hop red with its code.

--- The picture's size in user units: wide enough for the ids, and so that 8 pt text at A4
-- landscape width (842 pt) is at least `report.SVG_MIN_FONT` units high.
report.SVG_WIDTH = 1180
report.SVG_MIN_FONT = 11.5   -- >= 8 * 1180 / 842 = 11.2

local FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
local MONO = "DejaVu Sans Mono, Menlo, Consolas, monospace"
local BLUE, ORANGE, RED = "#1f5fbf", "#d9730d", "#d21f1f"

local function x_escape(s)
  return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;"))
end

local function fmt(n) return string.format("%.1f", n):gsub("%.0$", "") end

-- An SVG canvas: a list of elements and the places (boxes) of the components drawn.
local function canvas()
  local c = { els = {}, places = {} }
  function c.add(s) c.els[#c.els + 1] = s end
  function c.rect(x, y, w, h, style)
    c.add(string.format('<rect x="%s" y="%s" width="%s" height="%s" rx="%s" %s/>', fmt(x), fmt(y), fmt(w), fmt(h),
      fmt(style.rx or 6), style.attrs or ""))
  end
  function c.text(x, y, s, size, attrs)
    assert(size >= report.SVG_MIN_FONT)
    c.add(string.format('<text x="%s" y="%s" font-size="%s" %s>%s</text>', fmt(x), fmt(y), fmt(size), attrs or "",
      x_escape(s)))
  end
  -- the place of a component (several for a route table or ACL shared by subnets)
  function c.place(id, box)
    if not id then return end
    c.places[id] = c.places[id] or {}
    table.insert(c.places[id], box)
  end
  return c
end

local function hop_list(leg) return leg and leg.hops or {} end

-- The subnets of an account in the newer topology shape, or made from the older one (workload
-- in the first subnet).
local function subnets_of(a)
  local out = {}
  for i, s in ipairs(a.subnets or {}) do
    local items = s.items
    if not items then
      items = {}
      if i == 1 and a.workload then items[1] = { id = a.workload.id, label = a.workload.label } end
    end
    out[i] = { id = s.id, cidr = s.cidr, role = s.role, az = s.az, route_table = s.route_table, nacl = s.nacl,
      items = items }
  end
  if #out == 0 and a.workload then out[1] = { id = "?", items = { { id = a.workload.id, label = a.workload.label } } } end
  return out
end

local ITEM_W, ITEM_H, SIDE_W, SIDE_H = 214, 58, 172, 40
local ACCOUNT_W, MIDDLE_W, MARGIN = 448, 220, 16

-- Draws one account at x (left), returns its height; `items_right`: ENIs on the right of the subnet
-- (towards the middle), route table and ACL on the other side.
local function draw_account(c, a, x, y, items_right, hot)
  local subnets = subnets_of(a)
  local sub_x, sub_w = x + 24, ACCOUNT_W - 48
  local yy = y + 64
  local subnet_boxes = {}
  for _, s in ipairs(subnets) do
    local n_items = math.max(1, #s.items)
    local h = 30 + math.max(n_items * (ITEM_H + 8), 2 * (SIDE_H + 8)) + 2
    subnet_boxes[#subnet_boxes + 1] = { s = s, y = yy, h = h }
    yy = yy + h + 12
  end
  local vpc_h = yy - (y + 36) + 2
  local acct_h = vpc_h + 46
  c.rect(x, y, ACCOUNT_W, acct_h, { attrs = 'fill="#fafafa" stroke="#777" stroke-dasharray="6 4"' })
  c.text(x + 12, y + 20, "account " .. tostring(a.name) .. (a.id and ("  " .. a.id) or ""), 14,
    'font-weight="bold" fill="#333"')
  local vpc = a.vpc or {}
  c.rect(x + 12, y + 30, ACCOUNT_W - 24, vpc_h, { attrs = 'fill="#eef4fc" stroke="#3b7dd8" stroke-width="1.5"' })
  c.text(x + 22, y + 50, "VPC " .. tostring(vpc.id or "?") .. "  " .. tostring(vpc.cidr or ""), 13, 'fill="#1d4f91"')
  c.place(vpc.id, { x = x + 12, y = y + 30, w = ACCOUNT_W - 24, h = 28, account = a.id })
  for _, sb in ipairs(subnet_boxes) do
    local s = sb.s
    c.rect(sub_x, sb.y, sub_w, sb.h, { attrs = 'fill="#ffffff" stroke="#6a9fe0"' })
    c.text(sub_x + 8, sb.y + 18, tostring(s.id) .. "  " .. tostring(s.cidr or "") ..
      (s.role and ("  · " .. s.role) or ""), 11.5, 'fill="#1d4f91"')
    c.place(s.id, { x = sub_x, y = sb.y, w = sub_w, h = 24, subnet = s.id, account = a.id })
    local item_x = items_right and (sub_x + sub_w - ITEM_W - 8) or (sub_x + 8)
    local side_x = items_right and (sub_x + 8) or (sub_x + sub_w - SIDE_W - 8)
    for k, it in ipairs(s.items) do
      local iy = sb.y + 28 + (k - 1) * (ITEM_H + 8)
      local red = hot[it.id]
      c.rect(item_x, iy, ITEM_W, ITEM_H, { attrs = red and ('fill="#fde2e2" stroke="' .. RED .. '" stroke-width="2.5"')
        or 'fill="#fff2cc" stroke="#b58b00"' })
      c.text(item_x + 8, iy + 16, it.label or it.id, 12, 'font-weight="bold" fill="#333"')
      if it.label and it.id ~= it.label and not tostring(it.id):find(":", 1, true) then
        c.text(item_x + 8, iy + 31, it.id, 11.5, 'font-family="' .. MONO .. '" fill="#333"')
      end
      c.place(it.id, { x = item_x, y = iy, w = ITEM_W, h = ITEM_H, subnet = s.id, account = a.id })
      for g, sg in ipairs(it.sgs or {}) do
        local gx, gy, gw = item_x + 6 + (g - 1) * 70, iy + ITEM_H - 22, ITEM_W - 12
        if #it.sgs > 1 then gw = ITEM_W // #it.sgs - 8 end
        local sred = hot[sg]
        c.rect(gx, gy, gw, 18, { rx = 3, attrs = sred and ('fill="#fde2e2" stroke="' .. RED .. '" stroke-width="2.5"')
          or 'fill="#e8f5e9" stroke="#2e7d32"' })
        c.text(gx + 4, gy + 13.5, "SG " .. sg, 11.5, 'font-family="' .. MONO .. '" fill="#1b5e20"')
        c.place(sg, { x = gx, y = gy, w = gw, h = 18, subnet = s.id, account = a.id })
      end
    end
    local sides = { { "route table", s.route_table }, { "network ACL", s.nacl } }
    for k, side in ipairs(sides) do
      if side[2] then
        local sy = sb.y + 28 + (k - 1) * (SIDE_H + 8)
        local red = hot[side[2]]
        c.rect(side_x, sy, SIDE_W, SIDE_H, { rx = 3, attrs = red and ('fill="#fde2e2" stroke="' .. RED ..
          '" stroke-width="2.5"') or 'fill="#f4f6f8" stroke="#8a96a3"' })
        c.text(side_x + 6, sy + 15, side[1], 11.5, 'fill="#555"')
        c.text(side_x + 6, sy + 31, side[2], 11.5, 'font-family="' .. MONO .. '" fill="#333"')
        c.place(side[2], { x = side_x, y = sy, w = SIDE_W, h = SIDE_H, subnet = s.id, account = a.id })
      end
    end
  end
  return acct_h, subnet_boxes
end

-- The Transit Gateway (and its route table inside it) centred at cy in the middle column.
local function draw_tgw(c, tgw, x, cy, hot, accounts)
  local h = 132
  local y = cy - h / 2
  local owner
  for _, a in ipairs(accounts) do if a.name == tgw.account then owner = a end end
  c.rect(x, y, MIDDLE_W, h, { attrs = 'fill="#e2f0d9" stroke="#4f8a2f" stroke-width="1.5"' })
  c.text(x + 8, y + 18, "Transit Gateway", 13, 'font-weight="bold" fill="#2f5a17"')
  c.text(x + 8, y + 34, tgw.id, 11.5, 'font-family="' .. MONO .. '" fill="#333"')
  c.text(x + 8, y + 50, "owned by " .. tostring(tgw.account or "?") .. (owner and owner.id and ", shared over RAM" or ""),
    11.5, 'fill="#555"')
  c.place(tgw.id, { x = x, y = y, w = MIDDLE_W, h = 40 })
  if tgw.route_table then
    local red = hot[tgw.route_table]
    c.rect(x + 8, y + 62, MIDDLE_W - 16, 60, { rx = 3, attrs = red and ('fill="#fde2e2" stroke="' .. RED ..
      '" stroke-width="2.5"') or 'fill="#f4f6f8" stroke="#8a96a3"' })
    c.text(x + 14, y + 80, "TGW route table", 11.5, 'fill="#555"')
    c.text(x + 14, y + 96, tgw.route_table, 11.5, 'font-family="' .. MONO .. '" fill="#333"')
    c.place(tgw.route_table, { x = x + 8, y = y + 62, w = MIDDLE_W - 16, h = 60 })
  end
end

local function center(b) return b.x + b.w / 2, b.y + b.h / 2 end

-- Where the segment from the centre of `b` towards (tx, ty) leaves the box.
local function edge(b, tx, ty)
  local cx, cy = center(b)
  local dx, dy = tx - cx, ty - cy
  if dx == 0 and dy == 0 then return cx, cy end
  local t = math.min(dx ~= 0 and (b.w / 2) / math.abs(dx) or math.huge, dy ~= 0 and (b.h / 2) / math.abs(dy) or math.huge)
  return cx + dx * t, cy + dy * t
end

-- The box a hop is drawn at: a component drawn in several subnets (a shared route table or ACL)
-- is taken in the subnet the packet is in (the previous hop's, or for an inbound ACL rule the
-- next hop's).
local function choose(c, hop, prev, next_hop)
  local boxes = c.places[hop.component]
  if not boxes then return nil end
  if #boxes == 1 then return boxes[1] end
  local want = prev and prev.subnet
  if tostring(hop.rule or ""):match("^inbound") and next_hop then
    local nb = c.places[next_hop.component]
    if nb and #nb == 1 and nb[1].subnet then want = nb[1].subnet end
  end
  for _, b in ipairs(boxes) do if b.subnet == want then return b end end
  for _, b in ipairs(boxes) do if prev and b.account == prev.account then return b end end
  return boxes[1]
end

-- Draws a leg of the trace: arrows between the boxes of consecutive hops and a numbered badge per
-- hop (forward: blue circles on the box's top edge, return: orange squares on its bottom edge).
local function draw_leg(c, hops, style, start, blocked, badges)
  local prev = start
  local arrows, marks = {}, {}
  for i, h in ipairs(hops) do
    local b = choose(c, h, prev, hops[i + 1])
    if b then
      -- no arrow into a box drawn inside the previous one (an ENI's security group) or out of it
      local inside = prev and ((b.x >= prev.x and b.x + b.w <= prev.x + prev.w and b.y >= prev.y and
        b.y + b.h <= prev.y + prev.h) or (prev.x >= b.x and prev.x + prev.w <= b.x + b.w and prev.y >= b.y and
        prev.y + prev.h <= b.y + b.h))
      if prev and prev ~= b and not inside then
        local px, py = center(prev)
        local bx, by = center(b)
        local x1, y1 = edge(prev, bx, by)
        local x2, y2 = edge(b, px, py)
        local len = math.max(1, math.sqrt((x2 - x1) ^ 2 + (y2 - y1) ^ 2))
        local ox, oy = -(y2 - y1) / len * style.offset, (x2 - x1) / len * style.offset
        local bad = blocked[h.component] and (h.verdict == "deny" or h.verdict == "drop")
        arrows[#arrows + 1] = string.format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2.2"%s ' ..
          'marker-end="url(#%s)"/>', fmt(x1 + ox), fmt(y1 + oy), fmt(x2 + ox), fmt(y2 + oy), bad and RED or style.color,
          style.dash and (' stroke-dasharray="' .. style.dash .. '"') or "", bad and "arrow-red" or style.marker)
      end
      marks[b] = marks[b] or {}
      table.insert(marks[b], i)
      prev = b
    end
  end
  for _, a in ipairs(arrows) do c.add(a) end
  for b, nums in pairs(marks) do
    badges[#badges + 1] = { box = b, nums = nums, style = style }
  end
  return prev
end

local function draw_badges(c, badges)
  -- a stable order, so the same data gives the same file
  table.sort(badges, function(p, q)
    if p.style.name ~= q.style.name then return p.style.name < q.style.name end
    if p.box.x ~= q.box.x then return p.box.x < q.box.x end
    return p.box.y < q.box.y
  end)
  for _, bd in ipairs(badges) do
    local label = table.concat(bd.nums, ",")
    local w = math.max(22, 8 + 8 * #label)
    -- forward on the top right corner, return on the bottom left: stacked boxes never share one
    local x = bd.style.name == "forward" and (bd.box.x + bd.box.w - w - 4) or (bd.box.x + 4)
    local y = bd.style.name == "forward" and (bd.box.y - 10) or (bd.box.y + bd.box.h - 10)
    if bd.style.name == "forward" then
      c.rect(x, y, w, 20, { rx = 10, attrs = 'fill="' .. BLUE .. '"' })
    else
      c.rect(x, y, w, 20, { rx = 2, attrs = 'fill="#fff" stroke="' .. ORANGE .. '" stroke-width="2"' })
    end
    c.text(x + w / 2, y + 14.5, label, 11.5, 'text-anchor="middle" font-weight="bold" fill="' ..
      (bd.style.name == "forward" and "#fff" or ORANGE) .. '"')
  end
end

local DEFS = '<defs>' ..
  '<marker id="arrow-fwd" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">' ..
  '<path d="M0,0 L10,5 L0,10 z" fill="' .. BLUE .. '"/></marker>' ..
  '<marker id="arrow-ret" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">' ..
  '<path d="M0,0 L10,5 L0,10 z" fill="' .. ORANGE .. '"/></marker>' ..
  '<marker id="arrow-red" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">' ..
  '<path d="M0,0 L10,5 L0,10 z" fill="' .. RED .. '"/></marker></defs>'

-- The layout both pictures share: the accounts left and right, the TGW between them. `hot` is the
-- set of components drawn red. Returns the canvas and the height used.
local function layout(topo, hot, title)
  local c = canvas()
  c.text(MARGIN, 26, title or "awsnet", 16, 'font-weight="bold" fill="#222"')
  local accts = topo.accounts or {}
  local y0, height = 44, 0
  local boxes = {}
  for i, a in ipairs(accts) do
    local x = i == 1 and MARGIN or (MARGIN + ACCOUNT_W + MIDDLE_W + 2 * 20)
    if i > 2 then break end
    local h, subs = draw_account(c, a, x, y0, i == 1, hot)
    boxes[i] = subs
    height = math.max(height, h)
  end
  if topo.tgw then
    -- between the accounts, at the height of the TGW attachment subnets (the last of each)
    local ys = {}
    for _, subs in pairs(boxes) do
      local last = subs[#subs]
      if last then ys[#ys + 1] = last.y + last.h / 2 end
    end
    local cy = #ys > 0 and (ys[1] + (ys[2] or ys[1])) / 2 or (y0 + 120)
    draw_tgw(c, topo.tgw, MARGIN + ACCOUNT_W + 20, math.max(cy, y0 + 70), hot, accts)
  end
  return c, y0 + height
end

local function finish(c, height)
  local w = report.SVG_WIDTH
  height = math.ceil(height)
  return string.format('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" ' ..
    'viewBox="0 0 %d %d" width="%d" height="%d" font-family="%s">\n%s\n<rect x="0" y="0" width="%d" height="%d" ' ..
    'fill="#ffffff"/>\n%s\n</svg>\n', w, height, w, height, FONT, DEFS, w, height, table.concat(c.els, "\n"))
end

-- A legend line: a sample of the style and its text.
local function legend(c, x, y, kind, text)
  if kind == "forward" then
    c.add(string.format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2.2" marker-end="url(#arrow-fwd)"/>',
      x, y - 4, x + 36, y - 4, BLUE))
  elseif kind == "return" then
    c.add(string.format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2.2" stroke-dasharray="7 4" ' ..
      'marker-end="url(#arrow-ret)"/>', x, y - 4, x + 36, y - 4, ORANGE))
  elseif kind == "red" then
    c.rect(x, y - 13, 36, 16, { rx = 3, attrs = 'fill="#fde2e2" stroke="' .. RED .. '" stroke-width="2.5"' })
  end
  c.text(x + 44, y, text, 12, 'fill="#333"')
end

--- The picture of a trace over the topology, as SVG text (nothing outside Lua is needed).
-- @tparam table data the report's data (module comment): topology, trace
-- @treturn string the SVG
function report.topology_svg(data)
  local tr = data.trace
  -- every blocker (the blocked path's, or the one blocking hop of a trace without one)
  local blockers = {}
  if tr and tr.blockers and #tr.blockers > 0 then
    for _, b in ipairs(tr.blockers) do blockers[#blockers + 1] = { id = component_id(b.component), code = b.code } end
  elseif tr and tr.blocked_at then
    blockers[1] = { id = component_id(tr.blocked_at), code = tr.code or "blocked" }
  end
  local hot = {}
  for _, b in ipairs(blockers) do hot[b.id] = true end
  local topo = data.topology or { accounts = {} }
  local c, bottom = layout(topo, hot, data.title)
  local badges = {}
  if tr then
    -- the blocked path when there is one: the path as intended, through every blocker
    local legs = tr.blocked_path and tr.blocked_path.forward and tr.blocked_path or tr
    local start = draw_leg(c, hop_list(legs.forward), { name = "forward", color = BLUE, marker = "arrow-fwd",
      offset = -5 }, nil, hot, badges)
    local ret = hop_list(legs.ret)
    -- the reply starts where the request arrived
    draw_leg(c, ret, { name = "return", color = ORANGE, marker = "arrow-ret", offset = 5, dash = "7 4" }, start,
      hot, badges)
  end
  draw_badges(c, badges)
  -- each blocking component: its codes next to it, in red
  local y = bottom + 28
  local drawn = {}
  for _, blk in ipairs(blockers) do
    local boxes = c.places[blk.id]
    if boxes and not drawn[blk.id] then
      local codes = {}
      for _, other in ipairs(blockers) do
        if other.id == blk.id then codes[#codes + 1] = tostring(other.code) end
      end
      drawn[blk.id] = true
      local b = boxes[1]
      c.add('<g class="blocked" data-code="' .. x_escape(table.concat(codes, " ")) .. '">')
      c.rect(b.x - 3, b.y - 3, b.w + 6, b.h + 6, { rx = 6, attrs = 'fill="none" stroke="' .. RED .. '" stroke-width="3"' })
      c.text(b.x, b.y + b.h + 16, "✖ " .. table.concat(codes, ", "), 12, 'font-weight="bold" fill="' .. RED .. '"')
      c.add("</g>")
    end
  end
  for i, blk in ipairs(blockers) do
    c.add('<g class="blocked" data-code="' .. x_escape(tostring(blk.code)) .. '">')
    c.text(MARGIN, y, (#blockers > 1 and string.format("blocker %d: ", i) or "blocked: ") .. tostring(blk.code)
      .. " at " .. blk.id, 13, 'font-weight="bold" fill="' .. RED .. '"')
    c.add("</g>")
    y = y + 24
  end
  if #blockers == 0 and tr then
    c.text(MARGIN, y, "reachable, forward and return", 13, 'font-weight="bold" fill="#2e7d32"')
    y = y + 24
  end
  legend(c, MARGIN, y, "forward", "forward path (request), hop numbers in blue")
  legend(c, MARGIN + 400, y, "return", "return path (reply), hop numbers in orange")
  legend(c, MARGIN + 800, y, "red", #blockers > 1 and "a blocking hop" or "the blocking hop")
  return finish(c, y + 14)
end

--- One picture for prove's table: every fault row's blocking hop marked red with the row's
-- number (P2, P3, ...), and the rows listed under it with their codes.
-- @tparam table data the report's data: topology, prove
-- @treturn string the SVG
function report.prove_svg(data)
  local hot, marks = {}, {}
  for i, p in ipairs(data.prove or {}) do
    if not p.reachable and p.blocked_at then
      local id = component_id(p.blocked_at)
      hot[id] = true
      marks[id] = marks[id] or {}
      table.insert(marks[id], { n = i, code = p.code })
    end
  end
  local c, bottom = layout(data.topology or { accounts = {} }, hot, (data.title or "awsnet") .. ": what each piece does")
  local ids = {}
  for id in pairs(marks) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do
    local boxes = c.places[id]
    local b = boxes and boxes[1]
    if b then
      local nums = {}
      for _, m in ipairs(marks[id]) do nums[#nums + 1] = "P" .. m.n end
      local label = table.concat(nums, ",")
      local w = 10 + 8 * #label
      c.add('<g class="blocked" data-code="' .. x_escape(marks[id][1].code or "") .. '">')
      c.rect(b.x + b.w - w - 4, b.y - 10, w, 20, { rx = 3, attrs = 'fill="' .. RED .. '"' })
      c.text(b.x + b.w - w / 2 - 4, b.y + 4.5, label, 11.5, 'text-anchor="middle" font-weight="bold" fill="#fff"')
      c.add("</g>")
    end
  end
  local y = bottom + 28
  for i, p in ipairs(data.prove or {}) do
    local text = string.format("P%d  %s: %s", i, tostring(p.case), p.reachable and "reachable" or
      (tostring(p.code) .. " at " .. tostring(p.blocked_at and component_id(p.blocked_at) or "?")))
    c.text(MARGIN, y, text, 12.5, p.reachable and 'fill="#2e7d32"' or ('fill="' .. RED .. '"'))
    y = y + 20
  end
  return finish(c, y)
end

-- ------------------------------------------------------------------------------------------
-- The picture with Graphviz (report.dot, report.svg; kept for scripts that use them)

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
  local out = { reachable = tr.reachable, code = tr.code, blocked_at = tr.blocked_at and component_id(tr.blocked_at),
    forward = leg(tr.forward), ret = leg(tr.ret), assumptions = assumptions }
  if not tr.reachable and tr.blockers then
    out.blockers, out.fix = {}, {}
    for i, b in ipairs(tr.blockers) do
      out.blockers[i] = { n = i, component = component_id(b.component), kind = b.kind, code = b.code,
        direction = b.direction, setting = b.setting, change = b.change }
    end
    for i, c in ipairs(tr.fix or {}) do out.fix[i] = type(c) == "table" and c.change or tostring(c) end
    local path = tr.blocked_path
    if path then
      out.blocked_path = { complete = path.complete, stopped = path.stopped, assumptions = path.assumptions,
        forward = leg(path.forward), ret = leg(path.ret) }
    end
  end
  return out
end

local SECTIONS = { "topology", "trace", "checks", "readback", "prove", "reverse" }

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
-- @tparam[opt] table opts {merge, timings = "replace" (with merge: keep the sections, replace the timings)}
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
    if data.title == nil then data.title = old.title end
    local timings = {}
    -- opts.timings == "replace": this data's timings are the whole list (the demo's phases)
    if opts.timings ~= "replace" then
      for _, t in ipairs(old.timings or {}) do timings[#timings + 1] = t end
    end
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
  local path = dir .. "/topology.svg"
  process.write_file(path, report.topology_svg(data))
  local paths = { markdown = md, svg = path, json = dir .. "/report.json" }
  if data.prove and #data.prove > 0 then
    paths.prove_svg = dir .. "/prove.svg"
    process.write_file(paths.prove_svg, report.prove_svg(data))
  end
  return paths
end

return report
