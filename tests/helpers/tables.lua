--- Table helpers shared by specs.
local tables = {}

--- A deep copy of `t` (specs mutate copies of a fixture, never the fixture).
function tables.copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = tables.copy(v) end
  return c
end

return tables
