-- A busted output handler (the default in .busted): one progress line per spec file as it
-- finishes (file, successes, failures, errors, pending, seconds); at the end, busted's usual
-- summary line `N successes / N failures / N errors / N pending : T seconds` (unchanged: .ci/run
-- parses it) and the pending, failure and error details as utfTerminal prints them.
-- The per-file lines say "passed"/"failed", so they never match the summary line's pattern.
-- Options as utfTerminal: `-Xoutput --plain` (no colour), `-Xoutput --color` (force colour).
local s = require "say"
local pretty = require "pl.pretty"
local term = require "term"
local luassert = require "luassert"

local isatty = io.type(io.stdout) == "file" and term.isatty(io.stdout)

local function plain_colors()
  return setmetatable({}, { __index = function() return function(x) return x end end })
end

return function(options)
  local busted = require "busted"
  local handler = require("busted.outputHandlers.base")()
  local cli = require "cliargs"

  cli:set_name("progress output handler")
  cli:flag("--color", "force use of color")
  cli:flag("--plain", "force use of no color")
  local args, err = cli:parse(options.arguments)
  if not args and err then
    io.stderr:write(string.format("%s: %s\n\n", cli.name, err))
    io.stderr:write(cli.printer.generate_help_and_usage() .. "\n")
    os.exit(1)
  end

  local colors
  if args.plain or (not args.color and not isatty) then
    colors = plain_colors()
    luassert:set_parameter("TableErrorHighlightColor", "none")
  else
    colors = require "term.colors"
    luassert:set_parameter("TableErrorHighlightColor", "red")
  end

  local function seconds(sec)
    return (string.format("%.6f", sec):gsub("([0-9])0+$", "%1"))
  end

  local function counts()
    return { handler.successesCount, handler.failuresCount, handler.errorsCount, handler.pendingsCount }
  end

  -- the files of the run, for "[n/N]"
  local nfiles, done, at_start = 0, 0, nil

  local function status_string()
    local function word(n, key)
      if n == 0 then return s("output." .. key .. "_zero") end
      if n == 1 then return s("output." .. key .. "_single") end
      return s("output." .. key .. "_plural")
    end
    local successes, failures = handler.successesCount, handler.failuresCount
    local errors, pendings = handler.errorsCount, handler.pendingsCount
    return colors.green(successes) .. " " .. word(successes, "success") .. " / " ..
      colors.red(failures) .. " " .. word(failures, "failure") .. " / " ..
      colors.magenta(errors) .. " " .. word(errors, "error") .. " / " ..
      colors.yellow(pendings) .. " " .. word(pendings, "pending") .. " : " ..
      colors.bright(seconds(handler.getDuration())) .. " " .. s("output.seconds")
  end

  local function pending_description(pending)
    local str = colors.yellow(s("output.pending")) .. " → " ..
      colors.cyan(pending.trace.short_src) .. " @ " ..
      colors.cyan(pending.trace.currentline) .. "\n" .. colors.bright(pending.name)
    if type(pending.message) == "string" then
      str = str .. "\n" .. pending.message
    elseif pending.message ~= nil then
      str = str .. "\n" .. pretty.write(pending.message)
    end
    return str
  end

  local function failure_message(failure)
    local str = failure.randomseed and ("Random seed: " .. failure.randomseed .. "\n") or ""
    if type(failure.message) == "string" then
      str = str .. failure.message
    elseif failure.message == nil then
      str = str .. "Nil error"
    else
      str = str .. pretty.write(failure.message)
    end
    return str
  end

  local function failure_description(failure, is_error)
    local str = is_error and colors.magenta(s("output.error")) .. " → " or colors.red(s("output.failure")) .. " → "
    if not failure.element.trace or not failure.element.trace.short_src then
      str = str .. colors.cyan(failure_message(failure)) .. "\n" .. colors.bright(failure.name)
    else
      str = str .. colors.cyan(failure.element.trace.short_src) .. " @ " ..
        colors.cyan(failure.element.trace.currentline) .. "\n" ..
        colors.bright(failure.name) .. "\n" .. failure_message(failure)
    end
    if options.verbose and failure.trace and failure.trace.traceback then
      str = str .. "\n" .. failure.trace.traceback
    end
    return str
  end

  handler.suiteStart = function(suite, count, total)
    if total > 1 then io.write(string.format("\nRepeating all tests (run %u of %u) . . .\n\n", count, total)) end
    nfiles, done = 0, 0
    for _, child in ipairs(busted.children(suite)) do
      if child.descriptor == "file" then nfiles = nfiles + 1 end
    end
    io.flush()
    return nil, true
  end

  handler.fileStart = function()
    at_start = counts()
    return nil, true
  end

  handler.fileEnd = function(file)
    local now, before = counts(), at_start or { 0, 0, 0, 0 }
    local d = {}
    for i = 1, 4 do d[i] = now[i] - before[i] end
    done = done + 1
    local width = #tostring(nfiles)
    local mark = (d[2] > 0 or d[3] > 0) and colors.red("FAIL") or colors.green("ok  ")
    io.write(string.format("[%" .. width .. "d/%d] %s %-40s %4d passed, %d failed, %d errors, %d pending  %6.2f s\n",
      done, nfiles, mark, file.name, d[1], d[2], d[3], d[4], file.duration or 0))
    io.flush()
    at_start = nil
    return nil, true
  end

  -- a spec file that does not load never starts: say so in its place (the error is counted)
  handler.fileError = function(file)
    if not at_start and file and file.name then
      io.write(string.format("[load] %s %s: does not load (see the error below)\n", colors.red("FAIL"), file.name))
      io.flush()
    end
    return nil, true
  end

  handler.suiteEnd = function()
    io.write("\n", status_string(), "\n")
    for _, pending in ipairs(handler.pendings) do io.write("\n", pending_description(pending), "\n") end
    for _, failure in ipairs(handler.failures) do io.write("\n", failure_description(failure), "\n") end
    for _, e in ipairs(handler.errors) do io.write("\n", failure_description(e, true), "\n") end
    io.flush()
    return nil, true
  end

  busted.subscribe({ "suite", "start" }, handler.suiteStart)
  busted.subscribe({ "suite", "end" }, handler.suiteEnd)
  busted.subscribe({ "file", "start" }, handler.fileStart)
  busted.subscribe({ "file", "end" }, handler.fileEnd)
  busted.subscribe({ "error", "file" }, handler.fileError)

  return handler
end
