-- pandoc Lua filter for anyvip.toml(5): each table becomes a definition
-- list, one entry per row: the first cell is the term (the key), every other
-- cell a line "Header: value" under it. A five-column table (Key, Type,
-- Default, Allowed, Reload) does not fit 80 columns as a table (groff
-- overflows it, and lintian reports groff-message); entries in the style of
-- systemd.exec(5) do, at any width.

local stringify = pandoc.utils.stringify

-- A cell's content as inlines (a cell is one Plain in practice).
local function inlines_of(blocks)
  local out = pandoc.List()
  for i, block in ipairs(blocks) do
    if i > 1 then
      out:insert(pandoc.Space())
    end
    if block.content and block.tag ~= "BulletList" and block.tag ~= "OrderedList" then
      out:extend(block.content)
    else
      out:insert(pandoc.Str(stringify(block)))
    end
  end
  return out
end

function Table(tbl)
  local headers = {}
  for _, row in ipairs(tbl.head.rows) do
    for i, cell in ipairs(row.cells) do
      headers[i] = stringify(cell.contents)
    end
  end
  local items = pandoc.List()
  for _, body in ipairs(tbl.bodies) do
    for _, row in ipairs(body.body) do
      local cells = row.cells
      if #cells > 0 then
        -- one block, the lines joined by roff's .br: separate Plain blocks
        -- run together into one paragraph, and pandoc's LineBreak (.PD 0 /
        -- .P) ends the entry's indentation
        local lines = pandoc.List()
        for i = 2, #cells do
          if i > 2 then
            lines:insert(pandoc.RawInline("man", "\n.br\n"))
          end
          if headers[i] and headers[i] ~= "" then
            lines:insert(pandoc.Emph(pandoc.Str(headers[i] .. ":")))
            lines:insert(pandoc.Space())
          end
          lines:extend(inlines_of(cells[i].contents))
        end
        items:insert({ inlines_of(cells[1].contents), { pandoc.Plain(lines) } })
      end
    end
  end
  return pandoc.DefinitionList(items)
end
