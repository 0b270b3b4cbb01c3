std = "lua54"
max_line_length = 130
files["tests"] = { std = "+busted" }
files["bench"] = { std = "lua54" }
exclude_files = { "build", "build-san", "build-fuzz" }
