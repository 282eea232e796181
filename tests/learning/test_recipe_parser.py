import json

import pytest

from treadle.data.schema import parse_schema
from treadle.learning import RecipeError, parse_recipe


def canon(recipe, schema):
    return [t.canonical for t in parse_recipe(recipe, schema).terms]


def outputs(*exprs, **sections):
    return json.dumps({**sections, "outputs": list(exprs)})


# ------------------------------------------------------------------ constructs
def test_predefined_groups_expand_by_type_and_skip_non_inputs(schema):
    assert canon(outputs("ALL_TEXT"), schema) == ["title", "body"]
    assert canon(outputs("ALL_NUMERIC"), schema) == ["age", "hours-per-week", "'1st'"]
    assert canon(outputs("ALL_CATEGORICAL"), schema) == ["country", "gender", "'odd,name'"]
    assert canon(outputs("ALL_BINARY"), schema) == ["smoker"]
    # target y, rowId id and excluded secret are not inputs
    assert canon(outputs("ALL_INPUTS"), schema) == [
        "title", "body", "age", "hours-per-week", "country", "gender", "smoker", "'odd,name'", "'1st'",
    ]


def test_the_row_weight_is_not_an_input(schema):
    weighted = parse_schema(json.dumps({**schema.to_dict(), "rowWeight": "hours-per-week"}))
    assert canon(outputs("ALL_NUMERIC"), weighted) == ["age", "'1st'"]
    assert "hours-per-week" not in canon(outputs("ALL_INPUTS"), weighted)
    with pytest.raises(RecipeError, match="'hours-per-week' is the rowWeight attribute and cannot be used"):
        parse_recipe(outputs("hours-per-week"), weighted)


def test_bare_and_quoted_names(schema):
    assert canon(outputs("hours-per-week", "'odd,name'", '"1st"', "  age  "), schema) == [
        "hours-per-week", "'odd,name'", "'1st'", "age",
    ]


def test_quoted_name_with_escaped_quote():
    s = parse_schema(json.dumps({"attributes": [{"attributeName": "O'Brien", "attributeType": "TEXT"}]}))
    assert canon(outputs("lowercase('O\\'Brien')"), s) == ["lowercase('O\\'Brien')"]
    assert canon(outputs('"O\'Brien"'), s) == ["'O\\'Brien'"]


def test_groups_group_remove_and_nested_groups(schema):
    recipe = outputs(
        "LONGTEXT", "MIXED",
        groups={
            "LONGTEXT": "group_remove(ALL_TEXT, title)",
            "MIXED": "group(ALL_CATEGORICAL, 'age', LONGTEXT, country)",
        },
    )
    assert canon(recipe, schema) == ["body", "country", "gender", "'odd,name'", "age"]


def test_assignments_chained_and_nested_transformations(schema):
    recipe = outputs(
        "ngram(lc, 2)", "binned_age", "cartesian(binned_age, quantile_bin(hours-per-week,10))",
        assignments={"lc": "lowercase(title)", "binned_age": "quantile_bin(age, 10)"},
    )
    assert canon(recipe, schema) == [
        "ngram(lowercase(title),2)",
        "quantile_bin(age,10)",
        "cartesian(quantile_bin(age,10),quantile_bin(hours-per-week,10))",
    ]


def test_transformation_over_group_applies_to_each_member(schema):
    assert canon(outputs("quantile_bin(ALL_NUMERIC, 50)"), schema) == [
        "quantile_bin(age,50)", "quantile_bin(hours-per-week,50)", "quantile_bin('1st',50)",
    ]
    assert canon(outputs("cartesian(group(country, gender), smoker)"), schema) == [
        "cartesian(country,smoker)", "cartesian(gender,smoker)",
    ]


def test_all_seven_transformations_and_result_types(schema):
    recipe = parse_recipe(outputs(
        "lowercase(title)", "no_punct(country)", "ngram(title, 10)", "osb(body, 2)",
        "quantile_bin(age, 1000)", "normalize(age)", "cartesian(title, country)", "cartesian(country, gender)",
    ), schema)
    assert [t.type for t in recipe.terms] == [
        "TEXT", "CATEGORICAL", "TOKENS", "TOKENS", "BINNED", "NUMERIC", "TOKENS", "CATEGORICAL",
    ]


def test_comment_at_end_of_output(schema):
    assert canon(outputs("quantile_bin(age, 10) //quantile bin age"), schema) == ["quantile_bin(age,10)"]
    assert canon(outputs("'odd,name'// note"), schema) == ["'odd,name'"]


def test_optional_sections_and_dict_input(schema):
    assert canon({"outputs": ["age"]}, schema) == ["age"]
    assert canon({"groups": {}, "assignments": {}, "outputs": ["ALL_INPUTS"]}, schema)[0] == "title"


def test_duplicate_terms_are_kept_once(schema):
    recipe = outputs("lc", "lowercase(title)", "age", "ALL_NUMERIC", assignments={"lc": "lowercase(title)"})
    assert canon(recipe, schema) == ["lowercase(title)", "age", "hours-per-week", "'1st'"]


def test_amazon_style_suggested_recipe_parses(schema):
    recipe = outputs(
        "ALL_BINARY", "ALL_CATEGORICAL", "quantile_bin(NUMERIC_VARS_QB_20,20)", "ALL_TEXT",
        groups={"NUMERIC_VARS_QB_20": "group('age','1st')"}, assignments={},
    )
    assert "quantile_bin('1st',20)" in canon(recipe, schema)


def test_inputs_of_a_schema_in_the_legacy_spelling():
    s = parse_schema(json.dumps({
        "targetFieldName": "t",
        "recordAnnotationFieldName": "rid",
        "variables": [{"fieldName": "a", "fieldType": "numeric"}, {"fieldName": "t", "fieldType": "BINARY"},
                      {"fieldName": "rid", "fieldType": "CATEGORICAL"}],
        "excludedVariableNames": [],
    }))
    assert s.inputs == (("a", "NUMERIC"),)
    assert canon(outputs("ALL_INPUTS"), s) == ["a"]


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "recipe, message",
    [
        (outputs("age", "x", "ngrams(title, 2)"), "outputs[1] at column 1: unknown variable 'x'"),
        (outputs("age", "title", "ngrams(title, 2)"), 'outputs[2] at column 1: unknown transformation "ngrams"'),
        (outputs("lowercase(ngrams(title, 2))"), 'outputs[0] at column 11: unknown transformation "ngrams"'),
        (outputs("ngram(age, 2)"), "outputs[0] at column 7: ngram expects a TEXT value, but 'age' is NUMERIC"),
        (outputs("ngram(title, 1)"), "outputs[0] at column 14: ngram size must be a whole number from 2 to 10, got 1"),
        (outputs("ngram(title, 11)"), "outputs[0] at column 14: ngram size must be a whole number from 2 to 10"),
        (outputs("osb(title, 11)"), "outputs[0] at column 12: osb window must be a whole number from 2 to 10"),
        (outputs("quantile_bin(age, 1)"), "outputs[0] at column 19: quantile_bin number of bins must be a whole number from 2 to 1000"),
        (outputs("quantile_bin(age, 1001)"), "outputs[0] at column 19: quantile_bin number of bins"),
        (outputs("quantile_bin(age, ten)"), "got 'ten'"),
        (outputs("quantile_bin(title, 10)"), "outputs[0] at column 14: quantile_bin expects a NUMERIC value, but 'title' is TEXT"),
        (outputs("normalize(country)"), "outputs[0] at column 11: normalize expects a NUMERIC value, but 'country' is CATEGORICAL"),
        (outputs("quantile_bin(normalize(age), 10)"), "outputs[0] at column 14: quantile_bin needs a NUMERIC variable of the datasource"),
        (outputs("lowercase(age)"), "outputs[0] at column 11: lowercase expects a TEXT or CATEGORICAL value, but 'age' is NUMERIC"),
        (outputs("no_punct(smoker)"), "outputs[0] at column 10: no_punct expects a TEXT or CATEGORICAL value, but 'smoker' is BINARY"),
        (outputs("cartesian(age, country)"), "outputs[0] at column 11: cartesian expects a TEXT, token, CATEGORICAL, BINARY or binned value, but 'age' is NUMERIC"),
        (outputs("cartesian(country)"), "outputs[0] at column 1: cartesian takes 2 arguments (variable, variable), got 1"),
        (outputs("cartesian(country, gender, smoker)"), "outputs[0] at column 1: cartesian takes 2 arguments (variable, variable), got 3"),
        (outputs("ngram(title)"), "outputs[0] at column 1: ngram takes 2 arguments (variable, size), got 1"),
        (outputs("lowercase(title, 2)"), "outputs[0] at column 1: lowercase takes 1 argument (variable), got 2"),
        (outputs("ngram(ngram(title, 2), 2)"), "outputs[0] at column 7: ngram expects a TEXT value, but 'ngram(title,2)' is a token bag"),
        (outputs("y"), "outputs[0] at column 1: 'y' is the target attribute and cannot be used in a recipe"),
        (outputs("age", "lowercase(id)"), "outputs[1] at column 11: 'id' is the rowId attribute"),
        (outputs("secret"), "outputs[0] at column 1: 'secret' is an excluded attribute"),
        (outputs("lowercase(title"), "outputs[0] at column 16: expected ',' or ')', found end of expression"),
        (outputs("lowercase(title))"), "outputs[0] at column 17: unexpected ')' after the expression"),
        (outputs("age title"), "outputs[0] at column 1: unknown variable 'age title'"),
        (outputs("'age"), "outputs[0] at column 1: unterminated quoted name"),
        (outputs("1st"), "outputs[0] at column 1: name '1st' must start with a letter or be quoted"),
        (outputs("lowercase(5)"), "outputs[0] at column 11: a number is not a variable"),
        (outputs("_x"), "outputs[0] at column 1: name '_x' must start with a letter or be quoted"),
        (outputs("ngram(, 2)"), "outputs[0] at column 7: expected a variable, group or transformation, found ','"),
        (outputs(""), "outputs[0] at column 1: empty expression"),
        (outputs("// only a comment"), "outputs[0] at column 1: empty expression"),
        (outputs("age", 5), "outputs[1]: must be an expression string"),
        (json.dumps({"outputs": []}), "outputs: a non-empty list of expressions is required"),
        (json.dumps({"groups": {}}), "outputs: a non-empty list of expressions is required"),
        (json.dumps({"outputs": ["age"], "output": []}), "recipe: unknown section 'output'"),
        ('{"outputs": ["age"', "recipe at line 1 column 19: not valid JSON"),
        ("[]", "recipe: must be a JSON object"),
        (outputs("G", groups={"G": "group(ALL_INPUTS)"}), "groups.G at column 7: ALL_INPUTS cannot be used to build a group"),
        (outputs("G", groups={"G": "group_remove(ALL_INPUTS, age)"}), "groups.G at column 14: ALL_INPUTS cannot be used to build a group"),
        (outputs("G", groups={"G": "group()"}), "groups.G at column 1: group() needs at least one argument"),
        (outputs("G", groups={"G": "lowercase(title)"}), "groups.G at column 1: a group must be defined with group(...) or group_remove(...)"),
        (outputs("G", groups={"G": "group(lowercase(title))"}), "groups.G at column 7: a group can only contain variables and groups, not lowercase(...)"),
        (outputs("G", groups={"G": "group(age, nope)"}), "groups.G at column 12: unknown variable 'nope'"),
        (outputs("G", groups={"G": "group_remove(ALL_TEXT, age)"}), "groups.G at column 24: 'age' is not in the group being reduced"),
        (outputs("G", groups={"G": "group_remove(age, age)"}), "groups.G at column 14: group_remove needs a group as its first argument, not 'age'"),
        (outputs("G", groups={"G": "group(H)", "H": "group(G)"}), "refers to itself"),
        (outputs("G", groups={"G": "group(a1)"}, assignments={"a1": "lowercase(title)"}), "groups.G at column 7: assignment 'a1' cannot be part of a group"),
        (outputs("age", groups={"ALL_TEXT": "group(title)"}), "groups.ALL_TEXT: ALL_TEXT is a predefined group and cannot be redefined"),
        (outputs("age", groups={"age": "group(title)"}), "groups.age: 'age' is already a variable of the datasource"),
        (outputs("age", assignments={"G": "lowercase(title)"}, groups={"G": "group(title)"}), "assignments.G: 'G' is already defined as a group"),
        (outputs("age", assignments={"9x": "lowercase(title)"}), "assignments.9x: name must start with a letter"),
        (outputs("age", assignments={"a": "ngram(b, 2)", "b": "ngram(a, 2)"}), "refers to itself"),
        (outputs("age", assignments={"a": "lowercase(nope)"}), "assignments.a at column 11: unknown variable 'nope'"),
        (outputs("age", assignments={"a": 3}), "assignments.a: must be an expression string"),
        (json.dumps({"groups": [], "outputs": ["age"]}), "groups: must be an object"),
        (outputs("ti\\tle"), "outputs[0] at column 3: character '\\\\' is only allowed inside a quoted name"),
    ],
)
def test_errors_name_position_and_problem(schema, recipe, message):
    with pytest.raises(RecipeError) as info:
        parse_recipe(recipe, schema)
    assert message in str(info.value)


def test_output_limit_is_enforced():
    names = [(f"t{i}", "TEXT") for i in range(101)]
    schema = parse_schema(json.dumps({"attributes": [{"attributeName": n, "attributeType": t} for n, t in names]}))
    recipe = outputs(*[f"cartesian(ALL_TEXT, t{i})" for i in range(101)])
    with pytest.raises(RecipeError, match=r"outputs\[99\]: the recipe produces more than 10000"):
        parse_recipe(recipe, schema)
