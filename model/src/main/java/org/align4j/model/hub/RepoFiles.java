package org.align4j.model.hub;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Which files of a repository a run needs. A model: its config, generation config, tokenizer and chat
 * template files, the safetensors weights (one file, or the index and the shards it names) and a PEFT
 * adapter's files; nothing else (no pickle {@code .bin}, ONNX, GGUF or README). A dataset: the data files
 * of one split, named as the Hub's dataset viewer names them ({@code data/train-00000-of-00001.parquet},
 * {@code train.jsonl}, {@code default/train/0000.parquet}).
 */
public final class RepoFiles {
    /** Small files a model folder may have; each is fetched when the repository has it. */
    static final Set<String> MODEL_METADATA = Set.of(
            "config.json",
            "generation_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "added_tokens.json",
            "chat_template.jinja",
            "chat_template.json",
            "adapter_config.json");

    /** The single-file weights and the index of sharded ones. */
    static final String WEIGHTS = "model.safetensors";

    static final String INDEX = "model.safetensors.index.json";

    static final String ADAPTER_WEIGHTS = "adapter_model.safetensors";

    private static final Pattern SHARD_SUFFIX = Pattern.compile("(?:-\\d{5}-of-\\d{5}|-\\d+)$");

    private static final List<String> DATA_EXTENSIONS = List.of(".parquet", ".jsonl", ".jsonl.gz", ".json", ".json.gz");

    /** JSON files dataset repositories hold beside the data, which are not records. */
    private static final Set<String> NOT_DATA =
            Set.of("dataset_info.json", "dataset_infos.json", "state.json", "dataset_dict.json", "config.json");

    private RepoFiles() {}

    /**
     * The files of a model repository a run needs, except the shards an index names (the caller reads the
     * index first).
     *
     * @param id the repository (for messages)
     * @param siblings every file of the repository at the commit
     * @return the files to fetch
     * @throws HubException when it has no safetensors weights (pickle {@code .bin} files are refused by name)
     *     nor a PEFT adapter, or no config
     */
    public static List<String> model(HubId id, Collection<String> siblings) {
        List<String> files = new ArrayList<>();
        for (String s : siblings) {
            if (MODEL_METADATA.contains(s)) {
                files.add(s);
            }
        }
        if (siblings.contains(ADAPTER_WEIGHTS) && siblings.contains("adapter_config.json")) {
            files.add(ADAPTER_WEIGHTS);
            return files;
        }
        if (siblings.contains(WEIGHTS)) {
            files.add(WEIGHTS);
        } else if (siblings.contains(INDEX)) {
            files.add(INDEX);
        } else {
            List<String> pickles = siblings.stream()
                    .filter(s -> !s.contains("/") && (s.endsWith(".bin") || s.endsWith(".pt") || s.endsWith(".pth")))
                    .sorted()
                    .toList();
            if (!pickles.isEmpty()) {
                throw new HubException(id + ": the model's weights are pickle files only (" + String.join(", ", pickles)
                        + "); align4j never loads pickle: use a revision with model.safetensors (the Hub's "
                        + "conversion bot opens one as a pull request, refs/pr/N), or convert it yourself");
            }
            throw new HubException(id + ": no model.safetensors, model.safetensors.index.json or "
                    + "adapter_model.safetensors in the repository; is it a model repository?");
        }
        if (!siblings.contains("config.json")) {
            throw new HubException(id + ": no config.json in the repository");
        }
        return files;
    }

    /**
     * The files a complete snapshot of a model holds, checked when only the cache may be read.
     *
     * @param present the files the snapshot holds
     * @param indexShards the shards its index names (empty without an index)
     * @return the files that are missing (empty when it is complete)
     */
    static List<String> missingFromModelSnapshot(Set<String> present, Collection<String> indexShards) {
        List<String> missing = new ArrayList<>();
        boolean adapter = present.contains("adapter_config.json");
        if (adapter) {
            if (!present.contains(ADAPTER_WEIGHTS)) {
                missing.add(ADAPTER_WEIGHTS);
            }
            return missing;
        }
        if (!present.contains("config.json")) {
            missing.add("config.json");
        }
        if (!present.contains("tokenizer.json")) {
            missing.add("tokenizer.json");
        }
        if (!present.contains(WEIGHTS)) {
            if (!present.contains(INDEX)) {
                missing.add(WEIGHTS);
            } else {
                indexShards.stream().filter(s -> !present.contains(s)).forEach(missing::add);
            }
        }
        return missing;
    }

    /** @param path a file's path in a repository @return whether align4j's readers read it as data */
    public static boolean isDataFile(String path) {
        String n = path.toLowerCase(Locale.ROOT);
        return DATA_EXTENSIONS.stream().anyMatch(n::endsWith);
    }

    /**
     * Groups a dataset repository's data files by split. A file's split is the folder it sits in when its
     * name is a shard number ({@code default/train/0000.parquet}), else its name without the extension and
     * the shard suffix ({@code data/test_prefs-00000-of-00001.parquet} is {@code test_prefs}).
     *
     * @param siblings every file of the repository
     * @return split name to its files, sorted
     */
    public static Map<String, List<String>> splits(Collection<String> siblings) {
        Map<String, List<String>> splits = new TreeMap<>();
        for (String s : siblings) {
            if (!isDataFile(s) || s.startsWith(".") || s.contains("/.") || NOT_DATA.contains(s.replaceAll(".*/", ""))) {
                continue;
            }
            String[] parts = s.split("/");
            String name = parts[parts.length - 1];
            String stem = name;
            for (String ext : DATA_EXTENSIONS) {
                if (stem.toLowerCase(Locale.ROOT).endsWith(ext)) {
                    stem = stem.substring(0, stem.length() - ext.length());
                    break;
                }
            }
            String split;
            if (stem.matches("\\d+") && parts.length >= 2) {
                split = parts[parts.length - 2];
            } else {
                Matcher m = SHARD_SUFFIX.matcher(stem);
                split = m.find() && m.start() > 0 ? stem.substring(0, m.start()) : stem;
            }
            splits.computeIfAbsent(split, k -> new ArrayList<>()).add(s);
        }
        splits.values().forEach(l -> l.sort(null));
        return splits;
    }
}
