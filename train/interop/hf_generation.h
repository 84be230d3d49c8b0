// Where an imported model's generation stops, as transformers finds it: the eos_token_id of
// the folder's generation_config.json when that file names one, else config.json's (a token id
// or a list: Llama 3 Instruct ends turns with <|eot_id|> and texts with <|end_of_text|>).
#pragma once

// *out_json: the checkpoint's generation_config, {"eos_token_id": [ids]} (free with ct_free()), or
// NULL when neither file names an id the model can produce (ids past vocab_size are left out,
// with a warning). 0, or -1 + error naming the file.
int ct_hf_generation_config_read(const char *dir, int vocab_size, char **out_json);
