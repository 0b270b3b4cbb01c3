--- Edits of a snapshot in reach's table form ({accounts = {[id] = {[region] = {[Key] = array}}}}):
-- what prove's faults (awsnet.scenario.checks) and a blocked path's fix set (awsnet.reach.blocked)
-- change in a copy before reach.load reads it again.
-- @module awsnet.reach.edit
local edit = {}

--- A deep copy (metatables kept), so the original stays as it was read.
-- @param v the snapshot table (or any value)
-- @return the copy
function edit.copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = edit.copy(x) end
  return setmetatable(out, getmetatable(v))
end

--- Every item under `key` in every account and region of `data`, with the region table each is in.
-- @tparam table data the snapshot's table form
-- @tparam string key a top-level key ("RouteTables", "NetworkAcls", ...)
-- @treturn {table,...} the items
-- @treturn {table,...} the region table of each item
function edit.items(data, key)
  local out, where = {}, {}
  for _, regions in pairs(data.accounts or {}) do
    for _, d in pairs(regions) do
      for _, item in ipairs(d[key] or {}) do out[#out + 1], where[#where + 1] = item, d end
    end
  end
  return out, where
end

--- The items under `key` whose `field` is `id`.
-- @tparam table data the snapshot's table form
-- @tparam string key a top-level key
-- @tparam string field the id field ("RouteTableId", ...)
-- @tparam string id the id
-- @treturn {table,...} the items (one per account that lists it)
-- @treturn {table,...} the region table of each
function edit.find(data, key, field, id)
  local all, where = edit.items(data, key)
  local out, at = {}, {}
  for i, item in ipairs(all) do
    if item[field] == id then out[#out + 1], at[#at + 1] = item, where[i] end
  end
  return out, at
end

--- The elements of `list` that `pred` rejects, and how many it took out.
-- @tparam ?table list an array (nil is empty)
-- @tparam function pred called with each element
-- @treturn table the kept elements
-- @treturn integer how many were removed
function edit.remove_if(list, pred)
  local kept, removed = {}, 0
  for _, v in ipairs(list or {}) do
    if pred(v) then removed = removed + 1 else kept[#kept + 1] = v end
  end
  return kept, removed
end

return edit
